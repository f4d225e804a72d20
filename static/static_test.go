package static

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

func TestPagesAreEmbedded(t *testing.T) {
	tests := []struct {
		file string
		want []string // text the page must contain
	}{
		{"web/index.html", []string{`name="viewport"`, `id="buy"`, `id="countdown"`, "/api/v1/activities/", "/dashboard", `src="/app.js"`}},
		{"web/dashboard.html", []string{`name="viewport"`, "/vendor/uplot/uPlot.iife.min.js", `src="/dashboard.js"`, `id="c-peak"`}},
		{"web/app.js", []string{"server_time", "/api/v1/auth/demo-token", "/pay", "Retry-After"}},
		{"web/dashboard.js", []string{"/api/v1/dashboard/activities/", "text/event-stream", "db_writes_per_s"}},
		{"web/vendor/uplot/LICENSE", []string{"MIT"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := fs.ReadFile(FS, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s does not contain %q", tt.file, w)
				}
			}
		})
	}
}

// Every local asset a page links to is embedded, and nothing comes from
// another origin: the binary serves the whole page, no CDN at run time.
func TestPagesLinkOnlyEmbeddedAssets(t *testing.T) {
	ref := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	for _, page := range []string{"web/index.html", "web/dashboard.html"} {
		b, err := fs.ReadFile(FS, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			u := m[1]
			switch {
			case strings.HasPrefix(u, "https://github.com/"): // a plain link in the footer
				continue
			case strings.Contains(u, "://") || strings.HasPrefix(u, "//"):
				t.Errorf("%s loads %s from another origin", page, u)
				continue
			}
			path := strings.SplitN(strings.SplitN(u, "?", 2)[0], "#", 2)[0]
			if !strings.HasSuffix(path, ".js") && !strings.HasSuffix(path, ".css") {
				continue // a route such as /dashboard or /metrics
			}
			if _, err := fs.Stat(FS, "web"+path); err != nil {
				t.Errorf("%s links %s, which is not embedded: %v", page, u, err)
			}
		}
	}
}
