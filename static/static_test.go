package static

import (
	"io/fs"
	"strings"
	"testing"
)

func TestIndexIsEmbedded(t *testing.T) {
	b, err := fs.ReadFile(FS, "web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "/api/v1/activities/") {
		t.Fatal("index.html does not point at the API")
	}
}
