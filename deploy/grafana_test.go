package deploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Grafana: provisioning (datasource, dashboard provider), the dashboard
// JSON, and the compose service that mounts them. The dashboard's queries
// are checked against the metrics the Go code defines, so a renamed metric
// or label, or a new metric nobody charts, fails here.

const (
	grafanaDir         = "deploy/grafana"
	grafanaDashboard   = grafanaDir + "/dashboards/seckill.json"
	grafanaDatasources = grafanaDir + "/provisioning/datasources/prometheus.yaml"
	grafanaProviders   = grafanaDir + "/provisioning/dashboards/seckill.yaml"
	grafanaService     = "grafana"
)

func init() {
	allChecks = append(allChecks, check{"grafana", checkGrafana})
	copiedFiles = append(copiedFiles, grafanaDir+"/dashboards/*.json", grafanaDir+"/provisioning/*/*.yaml")
	mutations = append(mutations, grafanaMutations...)
}

func TestGrafana(t *testing.T) { runCheck(t, "grafana") }

// TestMetricCatalogueSeesTheCode keeps the catalogue honest: it must find
// metrics of every kind in the code, with their labels.
func TestMetricCatalogueSeesTheCode(t *testing.T) {
	cat, err := metricCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]metricDef{
		"seckill_http_requests_total":       {kind: "counter", labels: []string{"code", "method", "route"}},
		"seckill_order_db_write_seconds":    {kind: "histogram"},
		"seckill_queue_depth":               {kind: "gauge"},
		"seckill_rate_limited_total":        {kind: "counter", labels: []string{"limiter"}},
		"seckill_order_batch_size":          {kind: "histogram"},
		"seckill_publish_failures_total":    {kind: "counter", labels: []string{"reason"}},
		"seckill_orders_cancelled_total":    {kind: "counter", labels: []string{"reason"}},
		"seckill_notifications_total":       {kind: "counter", labels: []string{"channel", "result"}},
		"seckill_notification_send_seconds": {kind: "histogram", labels: []string{"channel"}},
		"seckill_dead_letters":              {kind: "gauge", labels: []string{"topic"}}, // ConstLabels
	} {
		got, ok := cat[name]
		if !ok {
			t.Errorf("%s: not found in the code", name)
			continue
		}
		if got.kind != want.kind || !slices.Equal(got.labels, want.labels) {
			t.Errorf("%s: %s %v (in %s), want %s %v", name, got.kind, got.labels, got.file, want.kind, want.labels)
		}
	}
}

// metricDef is a metric as the Go code defines it.
type metricDef struct {
	kind   string   // counter, gauge, histogram, summary
	labels []string // sorted; nil without labels
	file   string
}

var (
	catalogueOnce sync.Once
	catalogue     map[string]metricDef
	catalogueErr  error
)

// metricCatalogue parses every non-test Go file of the repository (the real
// one, not a test copy) and returns the seckill_* metrics it defines with
// prometheus.*Opts{Name: "..."} literals, their kind and labels.
func metricCatalogue() (map[string]metricDef, error) {
	catalogueOnce.Do(func() {
		catalogue, catalogueErr = scanMetrics(repoRoot)
	})
	return catalogue, catalogueErr
}

func scanMetrics(root string) (map[string]metricDef, error) {
	out := map[string]metricDef{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "data", ".services", ".artifacts", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil // a file someone is editing: its metrics show up as missing
		}
		rel, _ := filepath.Rel(root, path)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				if lit, ok := n.(*ast.CompositeLit); ok {
					if name, kind := optsName(lit); strings.HasPrefix(name, "seckill_") {
						if _, seen := out[name]; !seen {
							out[name] = metricDef{kind: kind, labels: constLabels(lit), file: rel}
						}
					}
				}
				return true
			}
			// prometheus.NewXxxVec(opts, []string{labels...})
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Vec") || len(call.Args) != 2 {
				return true
			}
			lit, ok := call.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			name, kind := optsName(lit)
			if !strings.HasPrefix(name, "seckill_") {
				return true
			}
			labels := constLabels(lit)
			if ls, ok := call.Args[1].(*ast.CompositeLit); ok {
				for _, e := range ls.Elts {
					if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
						s, _ := strconv.Unquote(b.Value)
						labels = append(labels, s)
					}
				}
			}
			sort.Strings(labels)
			out[name] = metricDef{kind: kind, labels: labels, file: rel}
			return true
		})
		return nil
	})
	return out, err
}

// optsName reads Name from a prometheus.{Counter,Gauge,Histogram,Summary}Opts
// literal.
func optsName(lit *ast.CompositeLit) (name, kind string) {
	sel, ok := lit.Type.(*ast.SelectorExpr)
	if !ok {
		return "", ""
	}
	if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "prometheus" {
		return "", ""
	}
	kind, ok = map[string]string{"CounterOpts": "counter", "GaugeOpts": "gauge", "HistogramOpts": "histogram", "SummaryOpts": "summary"}[sel.Sel.Name]
	if !ok {
		return "", ""
	}
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
			if b, ok := kv.Value.(*ast.BasicLit); ok && b.Kind == token.STRING {
				name, _ = strconv.Unquote(b.Value)
			}
		}
	}
	return name, kind
}

// constLabels reads the keys of ConstLabels: prometheus.Labels{"k": v} in
// an Opts literal (a GaugeFunc per topic carries its topic this way).
func constLabels(lit *ast.CompositeLit) []string {
	var out []string
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "ConstLabels" {
			continue
		}
		ls, ok := kv.Value.(*ast.CompositeLit)
		if !ok {
			continue
		}
		for _, le := range ls.Elts {
			if lkv, ok := le.(*ast.KeyValueExpr); ok {
				if b, ok := lkv.Key.(*ast.BasicLit); ok && b.Kind == token.STRING {
					s, _ := strconv.Unquote(b.Value)
					out = append(out, s)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// targetLabels are the labels Prometheus gives every series of a seckill
// target (prometheus.yml: job and instance, service, and in Kubernetes
// namespace and pod): a query may select or group by them whatever the
// metric.
var targetLabels = []string{"job", "instance", "service", "namespace", "pod"}

// Standard collectors the processes register (Go runtime, process): the
// dashboard may use these without a seckill_ definition.
var standardMetrics = map[string]bool{"go_goroutines": true, "process_resident_memory_bytes": true}

// grafanaDash is the part of a dashboard JSON the checks read.
type grafanaDash struct {
	UID    string         `json:"uid"`
	Title  string         `json:"title"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDSRef      `json:"datasource"`
	GridPos    struct{ X, W int } `json:"gridPos"`
	Targets    []struct {
		Datasource *grafanaDSRef `json:"datasource"`
		Expr       string        `json:"expr"`
		RefID      string        `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // inside collapsed rows
}

type grafanaDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaDatasourceFile struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string         `yaml:"name"`
		Type      string         `yaml:"type"`
		UID       string         `yaml:"uid"`
		Access    string         `yaml:"access"`
		URL       string         `yaml:"url"`
		IsDefault bool           `yaml:"isDefault"`
		Editable  bool           `yaml:"editable"`
		JSONData  map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

type grafanaProviderFile struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		Folder                string `yaml:"folder"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

var (
	promMetricRe = regexp.MustCompile(`\b((?:seckill|go|process)_[a-z0-9_]+)\b(\{[^}]*\})?`)
	promByRe     = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	promLabelRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

func checkGrafana(f *files) findings {
	var fs findings

	// Provisioning files.
	var ds grafanaDatasourceFile
	dsUIDs := map[string]bool{}
	if b, ok := f.read(grafanaDatasources); !ok {
		fs.add(grafanaDatasources, "", "missing")
	} else if err := decodeYAMLStrict(b, &ds); err != nil {
		fs.add(grafanaDatasources, "", "does not parse: %v", err)
	} else {
		if ds.APIVersion != 1 {
			fs.add(grafanaDatasources, "apiVersion", "is %d, want 1", ds.APIVersion)
		}
		for i, d := range ds.Datasources {
			where := fmt.Sprintf("datasources[%d]", i)
			if d.Type != "prometheus" || d.UID == "" {
				fs.add(grafanaDatasources, where, "type %q uid %q: want a prometheus datasource with a fixed uid", d.Type, d.UID)
				continue
			}
			dsUIDs[d.UID] = true
			u, err := url.Parse(d.URL)
			if err != nil || u.Hostname() == "" {
				fs.add(grafanaDatasources, where+".url", "%q is not a URL", d.URL)
				continue
			}
			if f.compose == nil {
				continue
			}
			prom, ok := f.compose.Services[u.Hostname()]
			if !ok || !strings.Contains(prom.Image, "prometheus") {
				fs.add(grafanaDatasources, where+".url", "host %q is not the compose Prometheus service", u.Hostname())
				continue
			}
			if port := u.Port(); port != "9090" {
				fs.add(grafanaDatasources, where+".url", "port %s, but Prometheus listens on 9090", port)
			}
		}
		if len(ds.Datasources) == 0 {
			fs.add(grafanaDatasources, "datasources", "none")
		}
	}

	var prov grafanaProviderFile
	providerPaths := map[string]bool{}
	if b, ok := f.read(grafanaProviders); !ok {
		fs.add(grafanaProviders, "", "missing")
	} else if err := decodeYAMLStrict(b, &prov); err != nil {
		fs.add(grafanaProviders, "", "does not parse: %v", err)
	} else {
		for i, p := range prov.Providers {
			if p.Type != "file" || p.Options.Path == "" {
				fs.add(grafanaProviders, fmt.Sprintf("providers[%d]", i), "type %q path %q: want a file provider with a path", p.Type, p.Options.Path)
				continue
			}
			providerPaths[p.Options.Path] = true
		}
		if len(prov.Providers) == 0 {
			fs.add(grafanaProviders, "providers", "none")
		}
	}

	// The compose service mounts both directories where Grafana reads them.
	if f.compose != nil {
		s, ok := f.compose.Services[grafanaService]
		if !ok {
			fs.add(composeFile, "services", "no %s service", grafanaService)
		} else {
			where := "services." + grafanaService
			if !strings.HasPrefix(s.Image, "grafana/grafana:") {
				fs.add(composeFile, where+".image", "is %q, want grafana/grafana:<version>", s.Image)
			}
			mounts := map[string]string{} // target -> source relative to the repository
			for _, v := range s.Volumes {
				if v.Type != "bind" {
					continue
				}
				rel, err := filepath.Rel(f.root, v.Source)
				if err != nil {
					rel = v.Source
				}
				mounts[v.Target] = filepath.ToSlash(rel)
			}
			if src := mounts["/etc/grafana/provisioning"]; src != grafanaDir+"/provisioning" {
				fs.add(composeFile, where+".volumes", "/etc/grafana/provisioning is not mounted from %s/provisioning (got %q)", grafanaDir, src)
			}
			for p := range providerPaths {
				if src := mounts[p]; src != grafanaDir+"/dashboards" {
					fs.add(grafanaProviders, "providers.options.path", "%s is not mounted from %s/dashboards in services.%s (got %q)", p, grafanaDir, grafanaService, src)
				}
			}
			if dep, ok := s.DependsOn["prometheus"]; !ok || dep.Condition != "service_healthy" {
				fs.add(composeFile, where+".depends_on", "does not wait for a healthy prometheus")
			}
			if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 {
				fs.add(composeFile, where+".healthcheck", "missing")
			}
			published := false
			for _, p := range s.Ports {
				published = published || p.Target == 3000
			}
			if !published {
				fs.add(composeFile, where+".ports", "does not publish Grafana's port 3000")
			}
		}
	}

	// The dashboard.
	b, ok := f.read(grafanaDashboard)
	if !ok {
		fs.add(grafanaDashboard, "", "missing")
		return fs
	}
	var d grafanaDash
	if err := json.Unmarshal(b, &d); err != nil {
		fs.add(grafanaDashboard, "", "does not parse: %v", err)
		return fs
	}
	if d.UID == "" || d.Title == "" {
		fs.add(grafanaDashboard, "", "uid %q title %q: both are needed for stable links", d.UID, d.Title)
	}
	cat, err := metricCatalogue()
	if err != nil {
		fs.add(grafanaDashboard, "", "cannot read the metrics of the code: %v", err)
		return fs
	}
	used := map[string]bool{}
	ids := map[int]string{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if other, dup := ids[p.ID]; dup {
				fs.add(grafanaDashboard, where, "id %d is also panel %q", p.ID, other)
			}
			ids[p.ID] = p.Title
			if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 {
				fs.add(grafanaDashboard, where+".gridPos", "x %d + w %d: outside the 24 columns", p.GridPos.X, p.GridPos.W)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if len(p.Targets) == 0 {
				fs.add(grafanaDashboard, where, "no query")
			}
			for _, ref := range []*grafanaDSRef{p.Datasource} {
				if ref != nil && !dsUIDs[ref.UID] && len(dsUIDs) > 0 {
					fs.add(grafanaDashboard, where+".datasource", "uid %q is not a provisioned datasource", ref.UID)
				}
			}
			for _, tg := range p.Targets {
				tw := where + ".targets[" + tg.RefID + "]"
				if tg.Datasource != nil && !dsUIDs[tg.Datasource.UID] && len(dsUIDs) > 0 {
					fs.add(grafanaDashboard, tw+".datasource", "uid %q is not a provisioned datasource", tg.Datasource.UID)
				}
				for _, msg := range checkPromQL(tg.Expr, cat, used) {
					fs.add(grafanaDashboard, tw, "%s", msg)
				}
			}
		}
	}
	walk(d.Panels)

	// Every metric the code defines is on some panel.
	for _, name := range sortedKeys(cat) {
		if !used[name] {
			fs.add(grafanaDashboard, "", "%s (defined in %s) is on no panel", name, cat[name].file)
		}
	}
	return fs
}

// checkPromQL checks the metric names and label names of one query against
// the catalogue and records the metrics it uses.
func checkPromQL(expr string, cat map[string]metricDef, used map[string]bool) []string {
	var out []string
	if strings.TrimSpace(expr) == "" {
		return []string{"empty query"}
	}
	known := map[string]bool{"le": false}
	for _, l := range targetLabels {
		known[l] = true
	}
	histogramUsed := false
	for _, m := range promMetricRe.FindAllStringSubmatch(expr, -1) {
		name, matchers := m[1], m[2]
		if standardMetrics[name] {
			continue
		}
		if !strings.HasPrefix(name, "seckill_") {
			out = append(out, fmt.Sprintf("%s: not a metric these services export", name))
			continue
		}
		def, ok := cat[name]
		base := name
		if !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b := strings.TrimSuffix(name, suf); b != name {
					if d, ok2 := cat[b]; ok2 && (d.kind == "histogram" || d.kind == "summary") {
						def, ok, base = d, true, b
						if suf == "_bucket" {
							histogramUsed = true
						}
					}
				}
			}
		}
		if !ok {
			out = append(out, fmt.Sprintf("%s: no such metric in the code", name))
			continue
		}
		if base == name && (def.kind == "histogram" || def.kind == "summary") {
			out = append(out, fmt.Sprintf("%s is a %s: query %s_bucket, _sum or _count", name, def.kind, name))
		}
		used[base] = true
		for _, l := range def.labels {
			known[l] = true
		}
		for _, lm := range promLabelRe.FindAllStringSubmatch(matchers, -1) {
			if !slices.Contains(def.labels, lm[1]) && !known[lm[1]] {
				out = append(out, fmt.Sprintf("%s has no label %q (labels: %v)", base, lm[1], def.labels))
			}
		}
	}
	if histogramUsed {
		known["le"] = true
	}
	for _, by := range promByRe.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(by[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !known[l] {
				out = append(out, fmt.Sprintf("aggregates by label %q, which no metric of the query has", l))
			}
		}
	}
	return out
}

var grafanaMutations = []mutation{
	{"grafana misspelt metric", grafanaDashboard, "sum(rate(seckill_orders_paid_total[", "sum(rate(seckill_order_paid_total[", "seckill_order_paid_total: no such metric in the code"},
	{"grafana misspelt label", grafanaDashboard, "sum by (limiter)", "sum by (limitter)", `aggregates by label "limitter"`},
	{"grafana wrong label matcher", grafanaDashboard, `seckill_orders_written_total{result=\"created\"}[$__range]`, `seckill_orders_written_total{outcome=\"created\"}[$__range]`, `seckill_orders_written_total has no label "outcome"`},
	{"grafana const label misspelt", grafanaDashboard, `"expr": "max by (topic) (seckill_dead_letters)"`, `"expr": "max by (topics) (seckill_dead_letters)"`, `aggregates by label "topics"`},
	{"grafana histogram without suffix", grafanaDashboard, "(0.99, sum by (le) (rate(seckill_order_db_write_seconds_bucket", "(0.99, sum by (le) (rate(seckill_order_db_write_seconds", "seckill_order_db_write_seconds is a histogram"},
	{"grafana metric left off", grafanaDashboard, "sum(rate(seckill_sweeper_cancelled_total[", "sum(rate(seckill_orders_paid_total[", "seckill_sweeper_cancelled_total (defined in order/"},
	{"grafana dashboard not JSON", grafanaDashboard, `"uid": "seckill-overview",`, `"uid": "seckill-overview",,`, "deploy/grafana/dashboards/seckill.json: does not parse"},
	{"grafana datasource uid", grafanaDatasources, "uid: prometheus", "uid: prom", `uid "prometheus" is not a provisioned datasource`},
	{"grafana datasource port", grafanaDatasources, "http://prometheus:9090", "http://prometheus:9091", "port 9091, but Prometheus listens on 9090"},
	{"grafana datasource host", grafanaDatasources, "http://prometheus:9090", "http://localhost:9090", `host "localhost" is not the compose Prometheus service`},
	{"grafana provider path", grafanaProviders, "path: /etc/grafana/dashboards", "path: /var/lib/grafana/dashboards", "/var/lib/grafana/dashboards is not mounted from deploy/grafana/dashboards"},
	{"grafana provider misspelt key", grafanaProviders, "    updateIntervalSeconds: 30", "    updateIntervalSecs: 30", "deploy/grafana/provisioning/dashboards/seckill.yaml: does not parse"},
	{"compose grafana without dashboards", composeFile, "      - ./deploy/grafana/dashboards:/etc/grafana/dashboards:ro\n", "", "/etc/grafana/dashboards is not mounted"},
	{"compose grafana without provisioning", composeFile, "      - ./deploy/grafana/provisioning:/etc/grafana/provisioning:ro\n", "", "/etc/grafana/provisioning is not mounted"},
	{"compose grafana floating tag", composeFile, "image: grafana/grafana:11.4.0", "image: grafana/grafana:latest", `services.grafana.image: image "grafana/grafana:latest" uses the floating tag`},
	{"compose grafana before prometheus", composeFile, "    depends_on:\n      prometheus:\n        condition: service_healthy\n", "", "services.grafana.depends_on: does not wait for a healthy prometheus"},
}
