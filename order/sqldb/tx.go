package sqldb

import (
	"context"
	"errors"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// maxTxAttempts bounds how often a transaction is run again after the
// database rolled it back to break a deadlock.
const maxTxAttempts = 5

// Transaction runs fn in a transaction of db and runs it again when MySQL
// picked it as a deadlock victim or timed out its lock wait: InnoDB rolls
// such a transaction back whole ("try restarting transaction"), so a retry
// is the documented cure. fn must therefore be safe to run more than once
// (it starts from scratch on the fresh tx it is given).
func Transaction(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = db.WithContext(ctx).Transaction(fn)
		if err == nil || !retryableTx(err) || attempt == maxTxAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// retryableTx reports a MySQL deadlock (1213) or lock wait timeout (1205).
func retryableTx(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}
