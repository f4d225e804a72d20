//go:build ignore

// directdeps reads `go mod edit -json` on stdin and prints the module's
// direct requirements outside this repository, for `make deps`.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

func main() {
	var mod struct {
		Require []struct {
			Path     string
			Indirect bool
		}
	}
	if err := json.NewDecoder(os.Stdin).Decode(&mod); err != nil {
		fmt.Fprintln(os.Stderr, "directdeps: decode go mod edit -json:", err)
		os.Exit(1)
	}
	for _, r := range mod.Require {
		if !r.Indirect && !strings.HasPrefix(r.Path, "github.com/flashsale/seckill/") {
			fmt.Println(r.Path)
		}
	}
}
