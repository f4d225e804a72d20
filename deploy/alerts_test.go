package deploy

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	yaml3 "gopkg.in/yaml.v3"
)

// Alerting rules: deploy/prometheus/alerts.yml parses as Prometheus parses
// it, every metric and label its expressions select is one the code
// defines (the Grafana check's catalogue and checkPromQL), every alert has
// a severity, a summary and a description that name what it fires for, and
// a runbook anchor that exists in docs/alerts.md; prometheus.yml loads the
// file and the compose Prometheus mounts it where that path resolves.
// promtool (Prometheus 2.42, Debian's package) then checks the file and
// runs the scenarios of alerts_test.yml.

const (
	alertsFile      = "deploy/prometheus/alerts.yml"
	alertsScenarios = "deploy/prometheus/alerts_test.yml"
	alertsDoc       = "docs/alerts.md"
	// runbookBase is where docs/alerts.md is read from an alert: each
	// runbook_url is this, '#', and the alert's name in lower case (the
	// anchor of its section).
	runbookBase = "https://github.com/flashsale/seckill/blob/main/" + alertsDoc
)

func init() {
	allChecks = append(allChecks, check{"alerts", checkAlerts})
	copiedFiles = append(copiedFiles, alertsFile, alertsDoc)
	mutations = append(mutations, alertsMutations...)
}

func TestAlertRules(t *testing.T) { runCheck(t, "alerts") }

var (
	severities = []string{"critical", "warning", "info"}
	alertName  = regexp.MustCompile(`^Seckill[A-Z][A-Za-z0-9]+$`)
	labelRef   = regexp.MustCompile(`\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)`)
	// Labels that tell one firing of an alert from another: when the
	// result of an expression carries one, the annotations must say it.
	// (service, job, namespace and pod go with the instance.)
	identifying = []string{"activity_id", "topic", "channel", "reason", "kind", "instance", "route"}
)

// promParser parses as Prometheus 2.42 does: no experimental functions,
// the classic metric and label names.
var promParser = parser.NewParser(parser.Options{})

func checkAlerts(f *files) findings {
	var fs findings
	b, ok := f.read(alertsFile)
	if !ok {
		fs.add(alertsFile, "", "missing")
		return fs
	}
	groups, errs := rulefmt.Parse(b, false, model.LegacyValidation, promParser, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		fs.add(alertsFile, "", "Prometheus refuses it: %v", err)
	}
	if groups == nil {
		return fs
	}
	forSet := rulesWithFor(b)

	doc, ok := f.read(alertsDoc)
	if !ok {
		fs.add(alertsDoc, "", "missing: the runbooks of the alerts")
	}
	anchors, sections := markdownAnchors(string(doc))

	cat, err := metricCatalogue()
	if err != nil {
		fs.add(alertsFile, "", "cannot read the metrics of the code: %v", err)
		return fs
	}
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				fs.add(alertsFile, "group "+g.Name, "recording rule %q: this file holds alerts only", r.Record)
				continue
			}
			where := "group " + g.Name + " alert " + r.Alert
			if !alertName.MatchString(r.Alert) {
				fs.add(alertsFile, where, "name: want Seckill<CamelCase>, the prefix every chaos report and route matches on")
			}
			if seen[r.Alert] {
				fs.add(alertsFile, where, "a second alert of this name: the runbook anchor would be shared")
			}
			seen[r.Alert] = true
			if !forSet[r.Alert] {
				fs.add(alertsFile, where, "no for: say how long the condition must hold, 0s included")
			}
			if s := r.Labels["severity"]; !slices.Contains(severities, s) {
				fs.add(alertsFile, where+".labels.severity", "is %q, want one of %v", s, severities)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					fs.add(alertsFile, where+".annotations."+a, "missing")
				}
			}
			if u := r.Annotations["runbook_url"]; u != "" {
				anchor := strings.ToLower(r.Alert)
				switch {
				case u != runbookBase+"#"+anchor:
					fs.add(alertsFile, where+".annotations.runbook_url", "is %q, want %s#%s", u, runbookBase, anchor)
				case !anchors[anchor]:
					fs.add(alertsDoc, "", "no section #%s: the runbook of %s (a heading \"### %s\")", anchor, r.Alert, r.Alert)
				}
			}
			for _, msg := range checkPromQL(r.Expr, cat, map[string]bool{}) {
				fs.add(alertsFile, where+".expr", "%s", msg)
			}
			expr, err := promParser.ParseExpr(r.Expr)
			if err != nil {
				continue // rulefmt reported it
			}
			out := resultLabels(expr, cat)
			summary, desc := r.Annotations["summary"], r.Annotations["description"]
			refs := map[string]bool{}
			for _, m := range labelRef.FindAllStringSubmatch(summary+"\n"+desc, -1) {
				refs[m[1]] = true
			}
			for _, l := range identifying {
				if out[l] && !refs[l] {
					fs.add(alertsFile, where+".annotations", "the alert carries %q but neither summary nor description names it ({{ $labels.%s }})", l, l)
				}
			}
			for _, l := range sortedKeys(refs) {
				if !out[l] && r.Labels[l] == "" {
					fs.add(alertsFile, where+".annotations", "$labels.%s is not a label of the expression's result: it renders empty", l)
				}
			}
			if slices.ContainsFunc(identifying, func(l string) bool { return out[l] }) && !labelRef.MatchString(summary) {
				fs.add(alertsFile, where+".annotations.summary", "names no label: say which instance, topic or activity it fires for")
			}
		}
	}
	for _, s := range sections {
		if !seen[s] {
			fs.add(alertsDoc, "### "+s, "a runbook for an alert %s does not have", alertsFile)
		}
	}
	// The settings the annotations and runbooks tell an operator to look
	// at exist.
	for file, text := range map[string]string{alertsFile: string(b), alertsDoc: string(doc)} {
		for i, line := range strings.Split(text, "\n") {
			for _, n := range nameRe.FindAllString(line, -1) {
				if !strings.HasSuffix(n, "_") && !knownNames[n] {
					fs.add(file, fmt.Sprintf("line %d", i+1), "%s is not a variable config.Names() knows", n)
				}
			}
		}
	}
	fs = append(fs, checkAlertWiring(f)...)
	return fs
}

// rulesWithFor returns the alerts that set for: explicitly (rulefmt reads
// a missing for: as 0s).
func rulesWithFor(b []byte) map[string]bool {
	var raw struct {
		Groups []struct {
			Rules []map[string]any `yaml:"rules"`
		} `yaml:"groups"`
	}
	out := map[string]bool{}
	if yaml3.Unmarshal(b, &raw) != nil {
		return out // rulefmt reported it
	}
	for _, g := range raw.Groups {
		for _, r := range g.Rules {
			if _, ok := r["for"]; ok {
				out[fmt.Sprint(r["alert"])] = true
			}
		}
	}
	return out
}

var (
	mdHeading   = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
	mdSlugStrip = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	mdAlert     = regexp.MustCompile(`(?m)^###[ \t]+(Seckill[A-Za-z0-9]+)[ \t]*$`)
)

// markdownAnchors returns the anchors GitHub makes of the headings of doc
// (lower case, punctuation dropped, spaces to hyphens) and the names of the
// "### Seckill..." sections.
func markdownAnchors(doc string) (map[string]bool, []string) {
	anchors := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(doc, -1) {
		slug := strings.ReplaceAll(mdSlugStrip.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
		anchors[slug] = true
	}
	var sections []string
	for _, m := range mdAlert.FindAllStringSubmatch(doc, -1) {
		sections = append(sections, m[1])
	}
	return anchors, sections
}

// resultLabels returns the label names the series of expr's result can
// carry (the union over the branches of an or), from the catalogue's
// labels of each metric plus the target labels, through aggregations,
// vector matching and the functions that change labels.
func resultLabels(expr parser.Expr, cat map[string]metricDef) map[string]bool {
	set := func(ls ...string) map[string]bool {
		out := map[string]bool{}
		for _, l := range ls {
			out[l] = true
		}
		return out
	}
	union := func(a, b map[string]bool) map[string]bool {
		out := set()
		for l := range a {
			out[l] = true
		}
		for l := range b {
			out[l] = true
		}
		return out
	}
	minus := func(a map[string]bool, ls []string) map[string]bool {
		out := union(a, nil)
		for _, l := range ls {
			delete(out, l)
		}
		return out
	}
	selector := func(vs *parser.VectorSelector) map[string]bool {
		out := set(targetLabels...)
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(vs.Name, "_bucket"), "_sum"), "_count")
		if d, ok := cat[vs.Name]; ok {
			out = union(out, set(d.labels...))
		} else if d, ok := cat[name]; ok {
			out = union(out, set(d.labels...))
			if strings.HasSuffix(vs.Name, "_bucket") {
				out["le"] = true
			}
		}
		return out
	}
	var walk func(e parser.Expr) map[string]bool
	walk = func(e parser.Expr) map[string]bool {
		switch n := e.(type) {
		case *parser.VectorSelector:
			return selector(n)
		case *parser.MatrixSelector:
			return walk(n.VectorSelector)
		case *parser.ParenExpr:
			return walk(n.Expr)
		case *parser.UnaryExpr:
			return walk(n.Expr)
		case *parser.SubqueryExpr:
			return walk(n.Expr)
		case *parser.StepInvariantExpr:
			return walk(n.Expr)
		case *parser.AggregateExpr:
			in := walk(n.Expr)
			switch {
			case n.Op == parser.TOPK || n.Op == parser.BOTTOMK:
				return in
			case n.Without:
				return minus(in, n.Grouping)
			case n.Op == parser.COUNT_VALUES:
				if s, ok := n.Param.(*parser.StringLiteral); ok {
					return set(append(slices.Clone(n.Grouping), s.Val)...)
				}
			}
			return set(n.Grouping...)
		case *parser.Call:
			switch n.Func.Name {
			case "absent", "absent_over_time":
				var vs *parser.VectorSelector
				switch a := n.Args[0].(type) {
				case *parser.VectorSelector:
					vs = a
				case *parser.MatrixSelector:
					vs, _ = a.VectorSelector.(*parser.VectorSelector)
				}
				out := set()
				if vs != nil {
					for _, m := range vs.LabelMatchers {
						if m.Type == labels.MatchEqual && m.Name != labels.MetricName {
							out[m.Name] = true
						}
					}
				}
				return out
			case "label_replace", "label_join":
				if s, ok := n.Args[1].(*parser.StringLiteral); ok {
					return union(walk(n.Args[0]), set(s.Val))
				}
			}
			for _, a := range n.Args {
				if t := a.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
					return walk(a)
				}
			}
			return set()
		case *parser.BinaryExpr:
			lv, rv := n.LHS.Type() == parser.ValueTypeVector, n.RHS.Type() == parser.ValueTypeVector
			switch {
			case !lv && !rv:
				return set()
			case !rv:
				return walk(n.LHS)
			case !lv:
				return walk(n.RHS)
			}
			switch n.Op {
			case parser.LAND, parser.LUNLESS:
				return walk(n.LHS)
			case parser.LOR:
				return union(walk(n.LHS), walk(n.RHS))
			}
			vm := n.VectorMatching
			switch {
			case vm == nil:
				return walk(n.LHS)
			case vm.Card == parser.CardManyToOne:
				return union(walk(n.LHS), set(vm.Include...))
			case vm.Card == parser.CardOneToMany:
				return union(walk(n.RHS), set(vm.Include...))
			case vm.On:
				return set(vm.MatchingLabels...)
			}
			return minus(walk(n.LHS), vm.MatchingLabels)
		}
		return set()
	}
	return walk(expr)
}

// checkAlertWiring: prometheus.yml loads alerts.yml, and the compose
// Prometheus mounts it where that rule_files entry resolves (relative to
// the directory of --config.file).
func checkAlertWiring(f *files) findings {
	var fs findings
	if f.prometheus == nil {
		return fs // parse reports it
	}
	entry := ""
	for _, rf := range f.prometheus.RuleFiles {
		if filepath.IsAbs(rf) {
			fs.add(prometheusFile, "rule_files", "%q is absolute: the file is found only in one layout; give it relative to prometheus.yml", rf)
			continue
		}
		if path.Join(path.Dir(prometheusFile), rf) == alertsFile {
			entry = rf
		}
	}
	if entry == "" {
		fs.add(prometheusFile, "rule_files", "does not load %s (want the entry %q)", alertsFile, path.Base(alertsFile))
		return fs
	}
	if f.compose == nil {
		return fs // parse reports it
	}
	for _, name := range sortedKeys(f.compose.Services) {
		s := f.compose.Services[name]
		if !strings.Contains(s.Image, "prom/prometheus") {
			continue
		}
		where := "services." + name
		config := "/etc/prometheus/prometheus.yml" // the image's default
		for _, a := range s.Command {
			if v, ok := strings.CutPrefix(a, "--config.file="); ok {
				config = v
			}
		}
		want := path.Join(path.Dir(config), entry)
		mounted := ""
		for _, v := range s.Volumes {
			if v.Type == "bind" && v.Target == want {
				rel, err := filepath.Rel(f.root, v.Source)
				if err != nil {
					rel = v.Source
				}
				mounted = filepath.ToSlash(rel)
			}
		}
		if mounted != alertsFile {
			fs.add(composeFile, where+".volumes", "%s is not mounted from %s (got %q): the rule_files entry %q of %s finds nothing", want, alertsFile, mounted, entry, config)
		}
	}
	return fs
}

// promtool returns the path of Prometheus' promtool, skipping the test
// when it is not installed, except under CI, which installs it (Debian's
// prometheus package: 2.42, the version the chaos runs start).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found: CI installs Debian's prometheus package (apt-get install prometheus)")
		}
		t.Skip("promtool not found: apt-get install prometheus")
	}
	return p
}

// TestAlertRulesLoadInPromtool: the Prometheus of the chaos runs (Debian's
// 2.42) accepts the rules.
func TestAlertRulesLoadInPromtool(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, "check", "rules", filepath.Join(repoRoot, alertsFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}
	t.Logf("%s", out)
}

// TestAlertScenarios runs alerts_test.yml through promtool test rules:
// the faults fire what they should, when they should, with the labels
// that name what failed; a spike that drains and a single reconciler pass
// fire nothing. The rules are the real ones less their annotations, which
// promtool would otherwise compare word for word (TestAlertRules checks
// them).
func TestAlertScenarios(t *testing.T) {
	bin := promtool(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, alertsFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml3.Node
	if err := yaml3.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	stripped := 0
	var strip func(n *yaml3.Node)
	strip = func(n *yaml3.Node) {
		if n.Kind == yaml3.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "annotations" {
					n.Content = slices.Delete(n.Content, i, i+2)
					stripped++
					i -= 2
					continue
				}
				strip(n.Content[i+1])
			}
			return
		}
		for _, c := range n.Content {
			strip(c)
		}
	}
	strip(&doc)
	if stripped == 0 {
		t.Fatal("no annotations found to strip: has the file's layout changed?")
	}
	rules, err := yaml3.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	scenarios, err := os.ReadFile(filepath.Join(repoRoot, alertsScenarios))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, path.Base(alertsFile)), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, path.Base(alertsScenarios)), scenarios, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "test", "rules", path.Base(alertsScenarios))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules %s: %v\n%s", alertsScenarios, err, out)
	}
	t.Logf("%s", out)
}

// TestResultLabels pins what resultLabels computes for the shapes the
// rules use, so a wrong answer cannot quietly pass or fail the annotation
// check.
func TestResultLabels(t *testing.T) {
	cat := map[string]metricDef{
		"seckill_dead_letters":    {kind: "gauge", labels: []string{"topic"}},
		"seckill_reconcile_drift": {kind: "gauge", labels: []string{"activity_id"}},
		"seckill_x_total":         {kind: "counter", labels: []string{"reason"}},
		"seckill_y_total":         {kind: "counter"},
		"seckill_h_seconds":       {kind: "histogram", labels: []string{"route"}},
	}
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`seckill_reconcile_drift > 0`, []string{"activity_id", "instance", "job", "namespace", "pod", "service"}},
		{`max by (namespace, topic) (seckill_dead_letters) > 0`, []string{"namespace", "topic"}},
		{`max without (instance, pod) (seckill_dead_letters)`, []string{"job", "namespace", "service", "topic"}},
		{`absent(up{service="gateway", job=~"x"})`, []string{"service"}},
		{`sum by (service) (up) == 0 or absent(up{service="gateway"})`, []string{"service"}},
		{`sum by (instance, reason) (rate(seckill_x_total[1m])) / on (instance) group_left sum by (instance) (rate(seckill_y_total[1m]))`, []string{"instance", "reason"}},
		{`sum by (instance) (seckill_x_total) / on (instance) sum by (instance, job) (seckill_y_total)`, []string{"instance"}},
		{`sum by (instance) (seckill_x_total) / ignoring (job) sum by (instance) (seckill_y_total)`, []string{"instance"}},
		{`max(seckill_y_total) > 0 unless on () sum by (reason) (seckill_x_total) > 0`, nil},
		{`histogram_quantile(0.9, sum by (le, route) (rate(seckill_h_seconds_bucket[1m])))`, []string{"le", "route"}},
		{`label_replace(max(seckill_y_total), "kind", "a", "", "")`, []string{"kind"}},
		{`vector(1)`, nil},
	} {
		e, err := promParser.ParseExpr(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := sortedKeys(resultLabels(e, cat)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: labels %v, want %v", tc.expr, got, tc.want)
		}
	}
}

var alertsMutations = []mutation{
	{"alerts misspelt metric", alertsFile, "expr: seckill_reconcile_drift > 0", "expr: seckill_reconcile_drifts > 0", "seckill_reconcile_drifts: no such metric in the code"},
	{"alerts misspelt label", alertsFile, `seckill_dead_letters{topic="orders"}`, `seckill_dead_letters{topics="orders"}`, `seckill_dead_letters has no label "topics"`},
	{"alerts histogram without suffix", alertsFile, "expr: up{service=~\"gateway|order-worker|notifier\"} == 0", "expr: seckill_order_db_write_seconds > 1", "seckill_order_db_write_seconds is a histogram"},
	{"alerts not PromQL", alertsFile, "(increase(seckill_publish_failures_total[1m])) > 0", "(increase(seckill_publish_failures_total[1m]) > 0", "could not parse expression"},
	{"alerts unknown key", alertsFile, "        for: 5m\n", "        for: 5m\n        keep_firing: 5m\n", "Prometheus refuses it"},
	{"alerts without for", alertsFile, "        for: 5m\n", "", "alert SeckillNotificationsFailing: no for:"},
	{"alerts without severity", alertsFile, "          severity: info\n        annotations:\n          summary: \"The reconciler", "        annotations:\n          summary: \"The reconciler", `alert SeckillReconcilerRepairing.labels.severity: is ""`},
	{"alerts without summary", alertsFile, "          summary: \"No {{ $labels.service }} process answers Prometheus\"\n", "", "alert SeckillServiceDown.annotations.summary: missing"},
	{"alerts runbook elsewhere", alertsFile, "docs/alerts.md#seckillstockundersell", "docs/alerts.md#seckill-stock-undersell", "want " + runbookBase + "#seckillstockundersell"},
	{"alerts runbook section missing", alertsDoc, "### SeckillOutboxStuck\n", "### Outbox stuck\n", "no section #seckilloutboxstuck"},
	{"alerts runbook of no alert", alertsDoc, "### SeckillOutboxStuck\n", "### SeckillOutboxStuck\n\n### SeckillGhost\n", "### SeckillGhost: a runbook for an alert"},
	{"alerts annotation loses the instance", alertsFile, "The reconciler on {{ $labels.instance }} reports activity", "The reconciler reports activity", `alert SeckillStockUndersell.annotations: the alert carries "instance"`},
	{"alerts aggregation loses the topic", alertsFile, `max by (namespace, topic) (seckill_dead_letters{topic!="orders"})`, `max by (namespace) (seckill_dead_letters{topic!="orders"})`, "$labels.topic is not a label of the expression's result"},
	{"alerts runbook names no setting", alertsDoc, "`SECKILL_PUBLISH_TIMEOUT` (2 s)", "`SECKILL_PUBLISH_TIMEOUTS` (2 s)", "SECKILL_PUBLISH_TIMEOUTS is not a variable config.Names() knows"},
	{"alerts summary names nothing", alertsFile, `summary: "{{ $labels.service }} {{ $labels.instance }} cannot read the queue"`, `summary: "a process cannot read the queue"`, "alert SeckillQueueUnreadable.annotations.summary: names no label"},
	{"prometheus without the rules", prometheusFile, "rule_files:\n  - alerts.yml\n", "", "rule_files: does not load deploy/prometheus/alerts.yml"},
	{"compose prometheus without the rules", composeFile, "      - ./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro\n", "", "/etc/prometheus/alerts.yml is not mounted from deploy/prometheus/alerts.yml"},
}
