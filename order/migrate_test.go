package order

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/testkit"
)

// appliedMigration is a row of schema_migrations.
type appliedMigration struct {
	Version  string
	Checksum string
}

// orderMigration is one of this package's migration files, as the history
// table records it.
type orderMigration struct {
	version, checksum string
}

func orderMigrations(t testing.TB, dialect string) []orderMigration {
	t.Helper()
	names, err := fs.Glob(migrationFS, path.Join("migrations", dialect, "*.sql"))
	if err != nil || len(names) == 0 {
		t.Fatalf("migrations of %s: %v (%d files)", dialect, err, len(names))
	}
	slices.Sort(names)
	out := make([]orderMigration, len(names))
	for i, n := range names {
		b, err := fs.ReadFile(migrationFS, n)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		version, _, _ := strings.Cut(path.Base(n), "_")
		out[i] = orderMigration{version: version, checksum: hex.EncodeToString(sum[:])}
	}
	return out
}

func TestMigrateIsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		// openTestDB migrated once; twice more must change nothing.
		for range 2 {
			if err := Migrate(ctx, db); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
		}
		migs := orderMigrations(t, db.Dialector.Name())
		var applied []appliedMigration
		if err := db.Table("schema_migrations").Order("version").Find(&applied).Error; err != nil {
			t.Fatal(err)
		}
		if len(applied) != len(migs) {
			t.Fatalf("schema_migrations has %d rows, want %d", len(applied), len(migs))
		}
		for i, m := range migs {
			if applied[i].Version != m.version || applied[i].Checksum != m.checksum {
				t.Errorf("row %d = %+v, want version %s checksum %s", i, applied[i], m.version, m.checksum)
			}
		}
		for _, table := range []string{"activities", "orders", "schema_migrations"} {
			if !db.Migrator().HasTable(table) {
				t.Errorf("table %s missing", table)
			}
		}
		for _, idx := range []string{"uk_orders_activity_user", "idx_orders_activity_state", "idx_orders_state_deadline"} {
			if !db.Migrator().HasIndex(&Order{}, idx) {
				t.Errorf("index %s missing", idx)
			}
		}
		// 0003 dropped the dedupe table that no consumer used.
		if db.Migrator().HasTable("consumed_events") {
			t.Error("table consumed_events still exists after 0003_drop_consumed_events")
		}
	})
}

func TestMigrateConcurrentStart(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			// Two processes (two pools) start on the same empty database.
			var cfg sqldb.Config
			if b.name == "sqlite" {
				cfg.DataDir = t.TempDir()
			} else {
				cfg.DSN = testkit.MySQLDSN(t)
			}
			ctx := context.Background()
			dbs := make([]*gorm.DB, 2)
			for i := range dbs {
				db, err := sqldb.Open(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					sqlDB, _ := db.DB()
					sqlDB.Close()
				})
				dbs[i] = db
			}
			errs := make([]error, len(dbs))
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() { errs[i] = Migrate(ctx, db) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Migrate in process %d: %v", i, err)
				}
			}
			var n int64
			if err := dbs[0].Table("schema_migrations").Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			migs := orderMigrations(t, dbs[0].Dialector.Name())
			if n != int64(len(migs)) {
				t.Errorf("schema_migrations has %d rows, want %d", n, len(migs))
			}
		})
	}
}

func TestMigrateRejectsChangedMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		if err := db.Table("schema_migrations").Where("version = ?", "0001").Update("checksum", "edited").Error; err != nil {
			t.Fatal(err)
		}
		err := Migrate(context.Background(), db)
		if !errors.Is(err, sqldb.ErrMigrationChanged) {
			t.Fatalf("Migrate = %v, want ErrMigrationChanged", err)
		}
	})
}

// TestModelsMatchSchema proves the gorm models and the migrated tables
// agree: every field written is read back unchanged.
func TestModelsMatchSchema(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		ts := time.Date(2026, 11, 11, 0, 0, 0, 123456000, time.UTC)
		a := Activity{
			Name: "双十一 flash", Stock: 5, Available: 4, PriceCents: 1999,
			StartsAt: ts, EndsAt: ts.Add(time.Hour), PayTimeoutSeconds: 600, Version: 3,
		}
		if err := db.WithContext(ctx).Create(&a).Error; err != nil {
			t.Fatalf("create activity: %v", err)
		}
		if a.ID == 0 {
			t.Fatal("activity id not assigned")
		}
		o := Order{
			ID: "0000000000000000001-1", ActivityID: a.ID, UserID: "Alice", RequestID: "r1",
			State: StatePaid, PriceCents: 1999, Version: 2, PayDeadline: ts.Add(10 * time.Minute), TraceID: "t1",
		}
		if err := db.WithContext(ctx).Create(&o).Error; err != nil {
			t.Fatalf("create order: %v", err)
		}
		var gotA Activity
		if err := db.Take(&gotA, a.ID).Error; err != nil {
			t.Fatal(err)
		}
		var gotO Order
		if err := db.Where("id = ?", o.ID).Take(&gotO).Error; err != nil {
			t.Fatal(err)
		}
		if !gotA.StartsAt.Equal(a.StartsAt) || !gotA.EndsAt.Equal(a.EndsAt) || !gotA.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("activity times differ: got %v %v %v, want %v %v %v", gotA.StartsAt, gotA.EndsAt, gotA.CreatedAt, a.StartsAt, a.EndsAt, a.CreatedAt)
		}
		gotA.StartsAt, gotA.EndsAt, gotA.CreatedAt, gotA.UpdatedAt = a.StartsAt, a.EndsAt, a.CreatedAt, a.UpdatedAt
		if gotA != a {
			t.Errorf("activity = %+v, want %+v", gotA, a)
		}
		if !gotO.PayDeadline.Equal(o.PayDeadline) || !gotO.CreatedAt.Equal(o.CreatedAt) {
			t.Errorf("order times differ: got %v %v, want %v %v", gotO.PayDeadline, gotO.CreatedAt, o.PayDeadline, o.CreatedAt)
		}
		gotO.PayDeadline, gotO.CreatedAt, gotO.UpdatedAt = o.PayDeadline, o.CreatedAt, o.UpdatedAt
		if gotO != o {
			t.Errorf("order = %+v, want %+v", gotO, o)
		}

		// The schema, not the code, guards the invariants.
		violations := []struct {
			name string
			err  error
		}{
			{"user ids are case-sensitive", db.Create(&Order{ID: "x2", ActivityID: a.ID, UserID: "alice", State: StateCreated, PayDeadline: ts}).Error},
		}
		for _, v := range violations {
			if v.err != nil {
				t.Errorf("%s: %v", v.name, v.err)
			}
		}
		rejected := []struct {
			name string
			err  error
		}{
			{"second order of a user", db.Create(&Order{ID: "x3", ActivityID: a.ID, UserID: "Alice", State: StateCreated, PayDeadline: ts}).Error},
			{"unknown activity", db.Create(&Order{ID: "x4", ActivityID: a.ID + 100, UserID: "bob", State: StateCreated, PayDeadline: ts}).Error},
			{"unknown state", db.Create(&Order{ID: "x5", ActivityID: a.ID, UserID: "carol", State: "queued", PayDeadline: ts}).Error},
			{"negative available", db.Model(&Activity{}).Where("id = ?", a.ID).Update("available", -1).Error},
			{"available above stock", db.Model(&Activity{}).Where("id = ?", a.ID).Update("available", 6).Error},
		}
		for _, r := range rejected {
			if r.err == nil {
				t.Errorf("%s: accepted, want a constraint error", r.name)
			}
		}
		if err := rejected[0].err; !errors.Is(err, gorm.ErrDuplicatedKey) {
			t.Errorf("second order of a user: %v, want gorm.ErrDuplicatedKey", err)
		}
		wantOrders := []string{"0000000000000000001-1", "x2"}
		var gotIDs []string
		if err := db.Model(&Order{}).Order("id").Pluck("id", &gotIDs).Error; err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(gotIDs, wantOrders) {
			t.Errorf("orders = %v, want %v", gotIDs, wantOrders)
		}
	})
}
