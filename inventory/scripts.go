package inventory

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The scripts live in lua/ so they read as Lua; lib.lua is prepended to
// each, so the reservation encoding and the release step are written once.
var (
	//go:embed lua/lib.lua
	luaLib string
	//go:embed lua/reserve.lua
	luaReserve string
	//go:embed lua/confirm.lua
	luaConfirm string
	//go:embed lua/release.lua
	luaRelease string
	//go:embed lua/claim.lua
	luaClaim string
	//go:embed lua/reap.lua
	luaReap string
	//go:embed lua/restore.lua
	luaRestore string
	//go:embed lua/load.lua
	luaLoad string
	//go:embed lua/stats.lua
	luaStats string
)

// scripts are the Store's Lua scripts. Each takes the four keys of one
// activity (meta, users, res, pending), so a Redis Cluster runs it in the
// activity's slot. Script.Run sends EVALSHA and falls back to EVAL once
// per server when the script is not cached there yet (a restart, a new
// cluster node).
type scripts struct {
	reserve, confirm, release, claim, reap, restore, load, stats *redis.Script
}

func newScripts() scripts {
	mk := func(body string) *redis.Script { return redis.NewScript(luaLib + "\n" + body) }
	return scripts{
		reserve: mk(luaReserve),
		confirm: mk(luaConfirm),
		release: mk(luaRelease),
		claim:   mk(luaClaim),
		reap:    mk(luaReap),
		restore: mk(luaRestore),
		load:    mk(luaLoad),
		stats:   mk(luaStats),
	}
}
