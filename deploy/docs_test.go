package deploy

// The README and docs/ are checked like the deploy files: a link that
// leads nowhere is a reader stranded, and a README that grows past a screen
// or two stops being read.

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	readmeFile = "README.md"
	docsDir    = "docs"
	// readmeMaxBytes keeps the README a page to read, not a manual:
	// everything else lives in docs/.
	readmeMaxBytes = 16 << 10
)

// docsToCome are files other work in progress is writing that the docs
// already link to: a link to one of them is accepted while it does not
// exist. Once it exists this list must lose it
// (TestDocsToComeAreStillToCome), so a later deletion is caught again.
// None now.
func docsToCome() []string { return nil }

// markdownFiles are the documents whose links are checked, relative to root.
func markdownFiles(root string) ([]string, error) {
	docs, err := filepath.Glob(filepath.Join(root, docsDir, "*.md"))
	if err != nil {
		return nil, err
	}
	files := []string{readmeFile, deployReadme}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil, err
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files, nil
}

func TestDocLinksResolve(t *testing.T) {
	files, err := markdownFiles(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found only %v: the docs moved?", files)
	}
	for _, f := range checkDocLinks(repoRoot, files, docsToCome()) {
		t.Error(f)
	}
}

func TestReadmeFitsAScreenOrTwo(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, readmeFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) >= readmeMaxBytes {
		t.Errorf("README.md is %d bytes, want under %d: move the detail into docs/ and link it", len(b), readmeMaxBytes)
	}
}

func TestDocsToComeAreStillToCome(t *testing.T) {
	for _, f := range docsToCome() {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err == nil {
			t.Errorf("%s exists now: drop it from docsToCome in deploy/docs_test.go, so its links are checked like any other", f)
		}
	}
}

// Every seckill_* metric the code defines has a row in the metrics table
// of docs/observability.md.
func TestObservabilityListsEveryMetric(t *testing.T) {
	cat, err := metricCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot, docsDir, "observability.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, def := range cat {
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("%s (%s, defined in %s) has no row in docs/observability.md's metrics table", name, def.kind, def.file)
		}
	}
}

// A table of small document trees, each with the findings the check must
// report (or none).
func TestDocLinkCheckFindsBrokenLinks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string // substrings, one per finding; none = no finding
	}{
		{"good links", map[string]string{
			"README.md":    "# Top\n\nSee [a](docs/a.md), [its part](docs/a.md#part-two), [here](#top), ![pic](docs/p.svg), [dir](docs), [web](https://example.com/x.md), [mail](mailto:a@b.c).\n",
			"docs/a.md":    "# A\n\n## Part two\n\nBack [up](../README.md#top); [self](#a).\n",
			"docs/p.svg":   "<svg/>",
			"deploy/x.txt": "",
		}, nil},
		{"missing file", map[string]string{"README.md": "[gone](docs/gone.md)\n"},
			[]string{"README.md:1: docs/gone.md: no such file"}},
		{"missing anchor", map[string]string{
			"README.md": "[x](docs/a.md#nowhere)\n", "docs/a.md": "# A\n"},
			[]string{`README.md:1: docs/a.md#nowhere: no heading with the anchor "nowhere"`}},
		{"missing anchor in the same file", map[string]string{"README.md": "# Top\n\n[x](#bottom)\n"},
			[]string{`README.md:3: #bottom: no heading with the anchor "bottom"`}},
		{"relative to the linking file", map[string]string{
			"README.md": "", "docs/a.md": "[x](docs/b.md)\n", "docs/b.md": "# B\n"},
			[]string{"docs/a.md:1: docs/b.md: no such file (docs/docs/b.md)"}},
		{"code is not a link", map[string]string{
			"README.md": "```sh\n[x](nowhere.md)\n# not a heading\n```\nAnd `[y](nowhere.md)` too.\n[z](#not-a-heading)\n"},
			[]string{`README.md:6: #not-a-heading: no heading`}},
		{"reference definition", map[string]string{"README.md": "[x][r]\n\n[r]: docs/none.md\n"},
			[]string{"README.md:3: docs/none.md: no such file"}},
		{"html attributes", map[string]string{"README.md": `<img src="docs/none.png">` + "\n"},
			[]string{"README.md:1: docs/none.png: no such file"}},
		{"a doc to come", map[string]string{"README.md": "[later](docs/later.md) [part](docs/later.md#run)\n"},
			[]string{"docs/later.md#run: an anchor into docs/later.md, which is still to come"}},
		{"duplicate headings", map[string]string{
			"README.md": "# Notes\n## Notes\n[a](#notes) [b](#notes-1) [c](#notes-2)\n"},
			[]string{`#notes-2: no heading with the anchor "notes-2"`}},
		{"escaped space", map[string]string{"README.md": "[x](docs/a%20b.md)\n", "docs/a b.md": ""}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var files []string
			for name, text := range tc.files {
				p := filepath.Join(root, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(name, ".md") {
					files = append(files, name)
				}
			}
			slices.Sort(files)
			got := checkDocLinks(root, files, []string{"docs/later.md"})
			if len(got) != len(tc.want) {
				t.Fatalf("findings:\n  %s\nwant %d: %q", strings.Join(got, "\n  "), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("finding %q does not say %q", got[i], w)
				}
			}
		})
	}
}

func TestGitHubSlugs(t *testing.T) {
	doc := strings.Join([]string{
		"# Architecture: the rooms and the house rules",
		"## Metrics (`/metrics`, Prometheus)",
		`### Open model, and what "latency" means here`,
		"## The buy token: a buy path that opens at the start",
		"## See [the API](api.md) first",
		"### SeckillStockUndersell",
		"## Räder & Größen_2",
		"## Dup", "## Dup", "## Dup",
		"```", "# in code", "```",
		"####### seven is not a heading",
		"#no space is not a heading",
		"## Closing hashes ##",
	}, "\n")
	got := githubAnchors(doc)
	want := []string{
		"architecture-the-rooms-and-the-house-rules", "metrics-metrics-prometheus",
		"open-model-and-what-latency-means-here", "the-buy-token-a-buy-path-that-opens-at-the-start",
		"see-the-api-first", "seckillstockundersell", "räder--größen_2", "dup", "dup-1", "dup-2",
		"closing-hashes",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no anchor %q; got %v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d anchors, want %d: %v", len(got), len(want), got)
	}
}

var (
	mdFence      = regexp.MustCompile("^\\s*(```|~~~)")
	mdATXHeading = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$`)
	mdCodeSpan   = regexp.MustCompile("`[^`]*`")
	mdInlineLink = regexp.MustCompile(`\]\(\s*<?([^()\s<>]+)>?(?:\s+"[^"]*")?\s*\)`)
	mdRefDef     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	htmlLink     = regexp.MustCompile(`(?:href|src)="([^"]+)"`)
	mdLinkText   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	slugDrop     = regexp.MustCompile(`[^\p{L}\p{M}\p{N} _-]`)
)

// githubAnchors returns the anchors GitHub gives the headings of doc: the
// heading's text lower-cased, everything but letters, digits, spaces,
// hyphens and underscores dropped, spaces made hyphens, and a repeated
// anchor suffixed -1, -2... Lines inside fenced code are not headings.
func githubAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(doc, "\n") {
		if mdFence.MatchString(line) {
			inFence = !inFence
			continue
		}
		m := mdATXHeading.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		text := mdLinkText.ReplaceAllString(m[1], "$1")
		s := strings.ReplaceAll(slugDrop.ReplaceAllString(strings.ToLower(text), ""), " ", "-")
		if n := seen[s]; n > 0 {
			seen[s]++
			s += "-" + strconv.Itoa(n)
		} else {
			seen[s] = 1
		}
		anchors[s] = true
	}
	return anchors
}

// docLink is one link target of a document and the line it is on.
type docLink struct {
	line   int
	target string
}

// docLinks returns the link targets of doc (inline links and images,
// reference definitions, HTML href and src), outside code.
func docLinks(doc string) []docLink {
	var out []docLink
	inFence := false
	for i, line := range strings.Split(doc, "\n") {
		if mdFence.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		line = mdCodeSpan.ReplaceAllString(line, "")
		for _, re := range []*regexp.Regexp{mdInlineLink, mdRefDef, htmlLink} {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				out = append(out, docLink{line: i + 1, target: m[1]})
			}
		}
	}
	return out
}

// checkDocLinks returns a finding for every relative link of files (paths
// relative to root, slash-separated) that names a file which does not
// exist, or an anchor no heading of its Markdown target makes.
func checkDocLinks(root string, files, toCome []string) []string {
	var out []string
	anchorsOf := map[string]map[string]bool{}
	anchors := func(file string) (map[string]bool, error) {
		if a, ok := anchorsOf[file]; ok {
			return a, nil
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			return nil, err
		}
		anchorsOf[file] = githubAnchors(string(b))
		return anchorsOf[file], nil
	}
	for _, file := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", file, err))
			continue
		}
		for _, l := range docLinks(string(b)) {
			at := fmt.Sprintf("%s:%d: %s", file, l.line, l.target)
			u, err := url.Parse(l.target)
			if err != nil {
				out = append(out, fmt.Sprintf("%s: does not parse as a URL: %v", at, err))
				continue
			}
			if u.Scheme != "" || u.Host != "" {
				continue // absolute: not this repository's to check
			}
			target := file
			if u.Path != "" {
				target = path.Clean(path.Join(path.Dir(file), u.Path))
				if strings.HasPrefix(u.Path, "/") {
					target = path.Clean(strings.TrimPrefix(u.Path, "/"))
				}
			}
			if slices.Contains(toCome, target) {
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil {
					if u.Fragment != "" {
						out = append(out, fmt.Sprintf("%s: an anchor into %s, which is still to come: link the file until it exists", at, target))
					}
					continue
				}
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil {
				out = append(out, fmt.Sprintf("%s: no such file (%s)", at, target))
				continue
			}
			if u.Fragment == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			a, err := anchors(target)
			if err != nil {
				out = append(out, fmt.Sprintf("%s: %v", at, err))
				continue
			}
			if !a[u.Fragment] {
				out = append(out, fmt.Sprintf("%s: no heading with the anchor %q in %s", at, u.Fragment, target))
			}
		}
	}
	return out
}
