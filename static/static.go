// Package static embeds the web pages so every binary that serves them is
// self-contained.
package static

import "embed"

// FS holds the pages under web/.
//
//go:embed web
var FS embed.FS
