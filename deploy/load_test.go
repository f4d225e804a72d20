package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	"golang.org/x/mod/modfile"
	yaml3 "gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Paths of the deployment files, relative to the repository root.
const (
	composeFile      = "docker-compose.yml"
	dockerfilePath   = "deploy/docker/Dockerfile"
	dockerignoreFile = ".dockerignore"
	prometheusFile   = "deploy/prometheus/prometheus.yml"
	k8sDir           = "deploy/k8s"
	kustomizationFn  = "kustomization.yaml"
	deployReadme     = "deploy/README.md"
	goWorkFile       = "go.work"
	cmdDir           = "gateway/cmd" // ./gateway/cmd/<SERVICE> is built by the Dockerfile
)

// repoRoot is where the tests find the files: the module sits in deploy/.
const repoRoot = ".."

// finding is one thing wrong, with where it is: the file and the field.
type finding struct {
	file, where, msg string
}

func (f finding) String() string {
	if f.where == "" {
		return f.file + ": " + f.msg
	}
	return f.file + ": " + f.where + ": " + f.msg
}

type findings []finding

func (fs *findings) add(file, where, format string, args ...any) {
	*fs = append(*fs, finding{file: file, where: where, msg: fmt.Sprintf(format, args...)})
}

// files is everything the checks look at, parsed. A part that failed to
// parse is nil and its error is in loadErrors.
type files struct {
	root string

	compose     *composetypes.Project
	dockerfile  *dockerfile
	ignore      []string // .dockerignore patterns, in order
	prometheus  *promConfig
	k8s         []k8sObject
	kustomize   *kustomization
	k8sFiles    []string          // *.yaml in deploy/k8s except kustomization.yaml
	workModules []string          // the `use` directories of go.work
	raw         map[string]string // every deployment file's text, for name scans

	loadErrors findings
}

// load reads and parses every deployment file under root.
func load(root string) *files {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	f := &files{root: root, raw: map[string]string{}}
	f.loadCompose()
	f.loadDockerfile()
	f.loadDockerignore()
	f.loadPrometheus()
	f.loadK8s()
	f.loadGoWork()
	if b, err := os.ReadFile(filepath.Join(root, deployReadme)); err != nil {
		f.loadErrors.add(deployReadme, "", "cannot read: %v", err)
	} else {
		f.raw[deployReadme] = string(b)
	}
	return f
}

func (f *files) read(rel string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(f.root, rel))
	if err != nil {
		f.loadErrors.add(rel, "", "cannot read: %v", err)
		return nil, false
	}
	f.raw[rel] = string(b)
	return b, true
}

// loadCompose uses the Compose specification's own loader (schema validation,
// interpolation, merge keys), with an empty environment so every ${VAR:-default}
// takes its default: what `docker compose up` sees on a clean machine.
func (f *files) loadCompose() {
	if _, ok := f.read(composeFile); !ok {
		return
	}
	p, err := loader.LoadWithContext(context.Background(), composetypes.ConfigDetails{
		WorkingDir:  f.root,
		ConfigFiles: []composetypes.ConfigFile{{Filename: filepath.Join(f.root, composeFile)}},
		Environment: composetypes.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("seckill", true)
	})
	if err != nil {
		f.loadErrors.add(composeFile, "", "docker compose would refuse it: %v", err)
		return
	}
	f.compose = p
}

// ---------------------------------------------------------------- Dockerfile

type dockerInstruction struct {
	line int    // first line of the instruction, 1-based
	cmd  string // upper case: FROM, RUN, ...
	args string // the rest, continuation lines joined
}

type dockerStage struct {
	image, name string
	line        int
	body        []dockerInstruction // instructions after FROM, up to the next FROM
}

type dockerfile struct {
	globalArgs []dockerInstruction // ARGs before the first FROM
	stages     []dockerStage
}

func (f *files) loadDockerfile() {
	b, ok := f.read(dockerfilePath)
	if !ok {
		return
	}
	d, err := parseDockerfile(string(b))
	if err != nil {
		f.loadErrors.add(dockerfilePath, "", "%v", err)
		return
	}
	f.dockerfile = d
}

var instructionRe = regexp.MustCompile(`^([A-Za-z]+)\s*(.*)$`)

func parseDockerfile(text string) (*dockerfile, error) {
	var ins []dockerInstruction
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		start := i + 1
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") {
				next = ""
			}
			line = strings.TrimSuffix(line, `\`) + " " + next
		}
		m := instructionRe.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("line %d: not an instruction: %q", start, line)
		}
		ins = append(ins, dockerInstruction{line: start, cmd: strings.ToUpper(m[1]), args: strings.TrimSpace(m[2])})
	}
	d := &dockerfile{}
	for _, in := range ins {
		if in.cmd == "FROM" {
			words := strings.Fields(in.args)
			var rest []string
			for _, w := range words {
				if !strings.HasPrefix(w, "--") {
					rest = append(rest, w)
				}
			}
			if len(rest) == 0 {
				return nil, fmt.Errorf("line %d: FROM without an image", in.line)
			}
			st := dockerStage{image: rest[0], line: in.line}
			if len(rest) == 3 && strings.EqualFold(rest[1], "AS") {
				st.name = rest[2]
			}
			d.stages = append(d.stages, st)
			continue
		}
		if len(d.stages) == 0 {
			if in.cmd == "ARG" {
				d.globalArgs = append(d.globalArgs, in)
				continue
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
		last := &d.stages[len(d.stages)-1]
		last.body = append(last.body, in)
	}
	if len(d.stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return d, nil
}

// argDefault returns the default of ARG name in the stage (or globally).
func (s dockerStage) argDefault(name string) (string, bool) {
	for _, in := range s.body {
		if in.cmd != "ARG" {
			continue
		}
		for _, w := range strings.Fields(in.args) {
			k, v, hasV := strings.Cut(w, "=")
			if k == name && hasV {
				return strings.Trim(v, `"'`), true
			}
		}
	}
	return "", false
}

// find returns the stage's instructions of one kind.
func (s dockerStage) find(cmd string) []dockerInstruction {
	var out []dockerInstruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// entrypoint is the exec-form ENTRYPOINT of the final stage.
func (d *dockerfile) entrypoint() ([]string, error) {
	eps := d.stages[len(d.stages)-1].find("ENTRYPOINT")
	if len(eps) == 0 {
		return nil, fmt.Errorf("the final stage has no ENTRYPOINT")
	}
	var ep []string
	if err := json.Unmarshal([]byte(eps[len(eps)-1].args), &ep); err != nil || len(ep) == 0 {
		return nil, fmt.Errorf("line %d: ENTRYPOINT must be the exec (JSON) form so SIGTERM reaches the binary, got %s", eps[len(eps)-1].line, eps[len(eps)-1].args)
	}
	return ep, nil
}

func (f *files) loadDockerignore() {
	b, ok := f.read(dockerignoreFile)
	if !ok {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f.ignore = append(f.ignore, l)
	}
}

// ignored reports whether .dockerignore keeps path (slash separated, relative
// to the build context) out of the context: Docker's rules, the last matching
// pattern wins, "!" re-includes, a matched directory excludes what is below it.
func ignored(patterns []string, path string) bool {
	out := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		p = strings.Trim(filepath.ToSlash(filepath.Clean(p)), "/")
		re := ignorePatternRe(p)
		for q := path; ; {
			if re.MatchString(q) {
				out = !neg
				break
			}
			i := strings.LastIndex(q, "/")
			if i < 0 {
				break
			}
			q = q[:i]
		}
	}
	return out
}

func ignorePatternRe(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
				b.WriteString("(.*/)?")
			} else {
				b.WriteString(".*")
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func (f *files) loadGoWork() {
	b, ok := f.read(goWorkFile)
	if !ok {
		return
	}
	delete(f.raw, goWorkFile) // not a deployment file
	wf, err := modfile.ParseWork(goWorkFile, b, nil)
	if err != nil {
		f.loadErrors.add(goWorkFile, "", "%v", err)
		return
	}
	for _, u := range wf.Use {
		f.workModules = append(f.workModules, strings.TrimPrefix(filepath.ToSlash(filepath.Clean(u.Path)), "./"))
	}
}

// ---------------------------------------------------------------- Prometheus

// promConfig is the part of Prometheus' configuration these files use,
// decoded strictly: a misspelt key fails here instead of being ignored by a
// Prometheus nobody watches. A new key needs a field here.
type promConfig struct {
	Global struct {
		ScrapeInterval     string            `yaml:"scrape_interval"`
		ScrapeTimeout      string            `yaml:"scrape_timeout"`
		EvaluationInterval string            `yaml:"evaluation_interval"`
		ExternalLabels     map[string]string `yaml:"external_labels"`
	} `yaml:"global"`
	RuleFiles     []string       `yaml:"rule_files"`
	ScrapeConfigs []scrapeConfig `yaml:"scrape_configs"`
}

type scrapeConfig struct {
	JobName              string          `yaml:"job_name"`
	MetricsPath          string          `yaml:"metrics_path"`
	Scheme               string          `yaml:"scheme"`
	ScrapeInterval       string          `yaml:"scrape_interval"`
	ScrapeTimeout        string          `yaml:"scrape_timeout"`
	HonorLabels          bool            `yaml:"honor_labels"`
	StaticConfigs        []staticConfig  `yaml:"static_configs"`
	DNSSDConfigs         []dnsSDConfig   `yaml:"dns_sd_configs"`
	KubernetesSDConfigs  []k8sSDConfig   `yaml:"kubernetes_sd_configs"`
	RelabelConfigs       []relabelConfig `yaml:"relabel_configs"`
	MetricRelabelConfigs []relabelConfig `yaml:"metric_relabel_configs"`
}

type staticConfig struct {
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels"`
}

type dnsSDConfig struct {
	Names           []string `yaml:"names"`
	Type            string   `yaml:"type"`
	Port            int      `yaml:"port"`
	RefreshInterval string   `yaml:"refresh_interval"`
}

type k8sSDConfig struct {
	Role       string `yaml:"role"`
	Namespaces struct {
		Names []string `yaml:"names"`
		Own   bool     `yaml:"own_namespace"`
	} `yaml:"namespaces"`
}

type relabelConfig struct {
	SourceLabels []string `yaml:"source_labels"`
	Separator    string   `yaml:"separator"`
	Regex        string   `yaml:"regex"`
	Replacement  string   `yaml:"replacement"`
	TargetLabel  string   `yaml:"target_label"`
	Action       string   `yaml:"action"`
	Modulus      int      `yaml:"modulus"`
}

func (f *files) loadPrometheus() {
	b, ok := f.read(prometheusFile)
	if !ok {
		return
	}
	var c promConfig
	if err := decodeYAMLStrict(b, &c); err != nil {
		f.loadErrors.add(prometheusFile, "", "%v", err)
		return
	}
	f.prometheus = &c
}

func decodeYAMLStrict(b []byte, v any) error {
	dec := yaml3.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra any
	if err := dec.Decode(&extra); err != io.EOF {
		return fmt.Errorf("more than one YAML document")
	}
	return nil
}

// ---------------------------------------------------------------- Kubernetes

// k8sObject is one manifest decoded into its real API type.
type k8sObject struct {
	file string // relative to the repository root
	doc  int    // 0-based document index in the file
	kind string // apiVersion/kind, e.g. apps/v1/Deployment
	meta *metav1.ObjectMeta
	obj  any // *appsv1.Deployment, *corev1.Service, ...
}

func (o k8sObject) where() string {
	return fmt.Sprintf("%s %s", o.kind[strings.LastIndex(o.kind, "/")+1:], o.meta.Name)
}

// kinds the manifests may use, each decoded into the API type the cluster
// validates against. Another kind needs a line here.
var k8sKinds = map[string]func() (any, *metav1.ObjectMeta){
	"v1/Namespace": func() (any, *metav1.ObjectMeta) { o := &corev1.Namespace{}; return o, &o.ObjectMeta },
	"v1/ConfigMap": func() (any, *metav1.ObjectMeta) { o := &corev1.ConfigMap{}; return o, &o.ObjectMeta },
	"v1/Secret":    func() (any, *metav1.ObjectMeta) { o := &corev1.Secret{}; return o, &o.ObjectMeta },
	"v1/Service":   func() (any, *metav1.ObjectMeta) { o := &corev1.Service{}; return o, &o.ObjectMeta },
	"apps/v1/Deployment": func() (any, *metav1.ObjectMeta) {
		o := &appsv1.Deployment{}
		return o, &o.ObjectMeta
	},
	"policy/v1/PodDisruptionBudget": func() (any, *metav1.ObjectMeta) {
		o := &policyv1.PodDisruptionBudget{}
		return o, &o.ObjectMeta
	},
	"autoscaling/v2/HorizontalPodAutoscaler": func() (any, *metav1.ObjectMeta) {
		o := &autoscalingv2.HorizontalPodAutoscaler{}
		return o, &o.ObjectMeta
	},
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func (f *files) loadK8s() {
	entries, err := os.ReadDir(filepath.Join(f.root, k8sDir))
	if err != nil {
		f.loadErrors.add(k8sDir, "", "cannot list: %v", err)
		return
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		rel := k8sDir + "/" + name
		b, ok := f.read(rel)
		if !ok {
			continue
		}
		if name == kustomizationFn {
			var k kustomization
			if err := decodeYAMLStrict(b, &k); err != nil {
				f.loadErrors.add(rel, "", "%v", err)
			} else {
				f.kustomize = &k
			}
			continue
		}
		f.k8sFiles = append(f.k8sFiles, name)
		for i, doc := range docSeparator.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			f.decodeK8s(rel, i, []byte(doc))
		}
	}
	sort.Strings(f.k8sFiles)
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (f *files) decodeK8s(rel string, i int, doc []byte) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		f.loadErrors.add(rel, fmt.Sprintf("document %d", i), "not YAML: %v", err)
		return
	}
	kind := tm.APIVersion + "/" + tm.Kind
	mk, ok := k8sKinds[kind]
	if !ok {
		f.loadErrors.add(rel, fmt.Sprintf("document %d", i), "apiVersion %q kind %q is not one the tests decode (add it to k8sKinds)", tm.APIVersion, tm.Kind)
		return
	}
	obj, meta := mk()
	// Strict: an unknown or duplicated field is an error, as with kubectl's
	// server-side field validation.
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		f.loadErrors.add(rel, fmt.Sprintf("document %d (%s)", i, tm.Kind), "does not decode into %s: %v", kind, err)
		return
	}
	f.k8s = append(f.k8s, k8sObject{file: rel, doc: i, kind: kind, meta: meta, obj: obj})
}

// kustomization is the part of kustomize's file these manifests use, decoded
// strictly. A new key needs a field here.
type kustomization struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Namespace  string `yaml:"namespace"`
	Labels     []struct {
		Pairs            map[string]string `yaml:"pairs"`
		IncludeSelectors bool              `yaml:"includeSelectors"`
		IncludeTemplates bool              `yaml:"includeTemplates"`
	} `yaml:"labels"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	} `yaml:"images"`
}

// typed is a decoded manifest with its concrete API type.
type typed[T any] struct {
	k8sObject
	v *T
}

// objects returns the decoded manifests of one API type, in file order.
func objects[T any](f *files) []typed[T] {
	var out []typed[T]
	for _, o := range f.k8s {
		if t, ok := o.obj.(*T); ok {
			out = append(out, typed[T]{o, t})
		}
	}
	return out
}
