package deploy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// check is one rule over the parsed files. Each returns every violation it
// finds, naming the file and the field.
type check struct {
	name string
	run  func(f *files) findings
}

var allChecks = []check{
	{"parse", checkParse},
	{"env names", checkEnvNames},
	{"required env", checkRequiredEnv},
	{"config loads", checkConfigLoads},
	{"ports", checkPorts},
	{"images pinned", checkImagesPinned},
	{"compose depends_on", checkComposeDependsOn},
	{"compose backends", checkComposeBackends},
	{"compose healthchecks", checkComposeHealthchecks},
	{"dockerfile", checkDockerfile},
	{"build targets", checkBuildTargets},
	{"dockerignore", checkDockerignore},
	{"k8s probes", checkK8sProbes},
	{"k8s pod hardening", checkK8sPods},
	{"k8s selectors, PDBs, HPAs", checkK8sSelectors},
	{"k8s secrets", checkK8sSecrets},
	{"k8s namespace and kustomization", checkK8sKustomization},
	{"prometheus", checkPrometheus},
	{"readme", checkReadme},
}

// ready reports whether the parts a check needs parsed; if not, it says so
// once (the parse errors themselves are checkParse's findings).
func ready(f *files, fs *findings, parts ...string) bool {
	ok := true
	for _, p := range parts {
		var missing bool
		switch p {
		case "compose":
			missing = f.compose == nil
		case "dockerfile":
			missing = f.dockerfile == nil
		case "prometheus":
			missing = f.prometheus == nil
		case "kustomize":
			missing = f.kustomize == nil
		}
		if missing {
			file := map[string]string{"compose": composeFile, "dockerfile": dockerfilePath, "prometheus": prometheusFile, "kustomize": k8sDir + "/" + kustomizationFn}[p]
			fs.add(file, "", "did not parse, see TestFilesParse")
			ok = false
		}
	}
	return ok
}

func checkParse(f *files) findings { return f.loadErrors }

var nameRe = regexp.MustCompile(`SECKILL_[A-Z0-9_]+`)

// checkEnvNames: every SECKILL_* name in any deployment file is one
// config.Names() lists (a misspelt variable is silently ignored at run time).
func checkEnvNames(f *files) findings {
	var fs findings
	unknown := func(n string) bool { return strings.HasPrefix(n, "SECKILL_") && !knownNames[n] }
	if f.compose != nil {
		for _, name := range sortedKeys(f.compose.Services) {
			for _, k := range sortedKeys(f.compose.Services[name].Environment) {
				if unknown(k) {
					fs.add(composeFile, "services."+name+".environment."+k, "not a variable config.Names() knows")
				}
			}
		}
	}
	for _, cm := range objects[corev1.ConfigMap](f) {
		for _, k := range sortedKeys(cm.v.Data) {
			if unknown(k) {
				fs.add(cm.file, cm.where()+" data."+k, "not a variable config.Names() knows")
			}
		}
	}
	for _, s := range objects[corev1.Secret](f) {
		for _, k := range sortedKeys(secretValues(s.v)) {
			if unknown(k) {
				fs.add(s.file, s.where()+" stringData."+k, "not a variable config.Names() knows")
			}
		}
	}
	for _, d := range objects[appsv1.Deployment](f) {
		for _, c := range d.v.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if unknown(e.Name) {
					fs.add(d.file, d.where()+" container "+c.Name+" env "+e.Name, "not a variable config.Names() knows")
				}
			}
		}
	}
	// Everything else (Dockerfile ENV, comments, the README): by text.
	for _, file := range sortedKeys(f.raw) {
		for i, line := range strings.Split(f.raw[file], "\n") {
			for _, n := range nameRe.FindAllString(line, -1) {
				if strings.HasSuffix(n, "_") { // a prefix mentioned in prose, SECKILL_GATEWAY_*
					continue
				}
				if unknown(n) {
					fs.add(file, fmt.Sprintf("line %d", i+1), "%s is not a variable config.Names() knows", n)
				}
			}
		}
	}
	return fs
}

// checkRequiredEnv: each split service gets what it needs (SECKILL_MQ=kafka
// among it), and the worker is not handed the gateway's secrets.
func checkRequiredEnv(f *files) findings {
	var fs findings
	rule := func(file, where string, env map[string]string, spec serviceSpec) {
		for _, k := range spec.required {
			if strings.TrimSpace(env[k]) == "" {
				fs.add(file, where, "%s is required by %s but not set", k, spec.binary)
			}
		}
		if v, ok := env["SECKILL_MQ"]; ok && v != "kafka" {
			fs.add(file, where, "SECKILL_MQ is %q: the split services talk through Kafka (kafka)", v)
		}
		for _, k := range spec.forbidden {
			if _, ok := env[k]; ok {
				fs.add(file, where, "%s is given to %s, which does not use it: keep secrets where they are needed", k, spec.binary)
			}
		}
	}
	if f.compose != nil {
		for _, c := range composeSeckill(f, &fs) {
			rule(composeFile, "services."+c.name+".environment", c.env, c.spec)
		}
	}
	for _, w := range workloads(f, &fs) {
		rule(w.file, w.where()+" container "+w.c.Name+" env", w.env, w.spec)
	}
	return fs
}

// checkConfigLoads feeds each service's environment to the real config.Load,
// and the ConfigMap (plus the Secret's placeholders) on its own.
func checkConfigLoads(f *files) findings {
	var fs findings
	if f.compose != nil {
		for _, c := range composeSeckill(f, &fs) {
			if _, err := loadConfig(c.env, c.spec); err != nil {
				fs.add(composeFile, "services."+c.name+".environment", "config.Load refuses it: %v", oneLine(err))
			}
		}
	}
	for _, w := range workloads(f, &fs) {
		if _, err := loadConfig(w.env, w.spec); err != nil {
			fs.add(w.file, w.where()+" container "+w.c.Name+" env", "config.Load refuses it: %v", oneLine(err))
		}
	}
	cms := objects[corev1.ConfigMap](f)
	if len(cms) == 0 {
		fs.add(k8sDir, "", "no ConfigMap")
	}
	for _, cm := range cms {
		env := map[string]string{}
		for k, v := range cm.v.Data {
			env[k] = v
		}
		for _, s := range objects[corev1.Secret](f) {
			for k, v := range secretValues(s.v) {
				env[k] = v
			}
		}
		if _, err := loadConfig(env, serviceSpec{}); err != nil {
			fs.add(cm.file, cm.where()+" data", "config.Load refuses the ConfigMap with the Secret's placeholders: %v", oneLine(err))
		}
	}
	return fs
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// checkPorts: the port in SECKILL_HTTP_ADDR is the one everything else
// names: compose ports/expose, the Dockerfile's EXPOSE, containerPort, probe
// ports, Service targetPort, scrape annotations and Prometheus targets.
func checkPorts(f *files) findings {
	var fs findings
	ports := map[int]string{} // every service port, for EXPOSE
	if f.compose != nil {
		for _, c := range composeSeckill(f, &fs) {
			base := "services." + c.name
			want, err := addrPort(c.env["SECKILL_HTTP_ADDR"])
			if err != nil {
				fs.add(composeFile, base+".environment.SECKILL_HTTP_ADDR", "%v", err)
				continue
			}
			ports[want] = composeFile + " " + c.name
			published := 0
			for i, p := range c.svc.Ports {
				if int(p.Target) != want {
					fs.add(composeFile, fmt.Sprintf("%s.ports[%d]", base, i), "container port %d, but SECKILL_HTTP_ADDR listens on %d", p.Target, want)
				}
				published++
			}
			for i, e := range c.svc.Expose {
				if n, err := strconv.Atoi(e); err != nil || n != want {
					fs.add(composeFile, fmt.Sprintf("%s.expose[%d]", base, i), "exposes %s, but SECKILL_HTTP_ADDR listens on %d", e, want)
				}
				published++
			}
			if published == 0 {
				fs.add(composeFile, base, "neither ports nor expose names %d (SECKILL_HTTP_ADDR)", want)
			}
			if !promScrapes(f, c.name, want, &fs) {
				fs.add(prometheusFile, "scrape_configs", "no job scrapes compose service %s on port %d", c.name, want)
			}
		}
	}
	for _, w := range workloads(f, &fs) {
		base := w.where() + " container " + w.c.Name
		want, err := addrPort(w.env["SECKILL_HTTP_ADDR"])
		if err != nil {
			fs.add(w.file, base+" env SECKILL_HTTP_ADDR", "%v", err)
			continue
		}
		ports[want] = w.file
		var declared []int
		for _, p := range w.c.Ports {
			declared = append(declared, int(p.ContainerPort))
		}
		if !slices.Contains(declared, want) {
			fs.add(w.file, base+" ports", "containerPort %v does not include %d (SECKILL_HTTP_ADDR)", declared, want)
		}
		for name, pr := range map[string]*corev1.Probe{"livenessProbe": w.c.LivenessProbe, "readinessProbe": w.c.ReadinessProbe, "startupProbe": w.c.StartupProbe} {
			if pr == nil || pr.HTTPGet == nil {
				continue // checkK8sProbes says what is missing
			}
			if got, ok := containerPort(w.c, pr.HTTPGet.Port); !ok || got != want {
				fs.add(w.file, base+" "+name+".httpGet.port", "%s resolves to %d, but SECKILL_HTTP_ADDR listens on %d", pr.HTTPGet.Port.String(), got, want)
			}
		}
		ann := w.v.Spec.Template.Annotations
		if ann["prometheus.io/port"] != strconv.Itoa(want) {
			fs.add(w.file, w.where()+" spec.template.metadata.annotations[prometheus.io/port]", "is %q, but SECKILL_HTTP_ADDR listens on %d", ann["prometheus.io/port"], want)
		}
		for _, s := range objects[corev1.Service](f) {
			if !selects(s.v.Spec.Selector, w.v.Spec.Template.Labels) {
				continue
			}
			for i, sp := range s.v.Spec.Ports {
				tp := sp.TargetPort
				if tp.IntValue() == 0 && tp.StrVal == "" {
					tp.IntVal = sp.Port // targetPort defaults to port
				}
				if got, ok := containerPort(w.c, tp); !ok || got != want {
					fs.add(s.file, fmt.Sprintf("%s spec.ports[%d].targetPort", s.where(), i), "%s resolves to %d in Deployment %s, but SECKILL_HTTP_ADDR listens on %d", tp.String(), got, w.meta.Name, want)
				}
			}
		}
	}
	if f.dockerfile != nil {
		final := f.dockerfile.stages[len(f.dockerfile.stages)-1]
		exposed := map[int]bool{}
		for _, e := range final.find("EXPOSE") {
			for _, w := range strings.Fields(e.args) {
				n, _ := strconv.Atoi(strings.TrimSuffix(w, "/tcp"))
				exposed[n] = true
			}
		}
		for _, p := range sortedIntKeys(ports) {
			if !exposed[p] {
				fs.add(dockerfilePath, "EXPOSE", "does not list %d, the SECKILL_HTTP_ADDR port in %s", p, ports[p])
			}
		}
	}
	return fs
}

func sortedIntKeys[V any](m map[int]V) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// promScrapes reports whether some job scrapes compose service name, and
// adds a finding for each job that names the service with another port.
func promScrapes(f *files, name string, port int, fs *findings) bool {
	if f.prometheus == nil {
		return true // reported by parse
	}
	found := false
	for _, j := range f.prometheus.ScrapeConfigs {
		for _, sc := range j.StaticConfigs {
			for _, t := range sc.Targets {
				if hostOf(t) != name {
					continue
				}
				found = true
				if t != fmt.Sprintf("%s:%d", name, port) {
					fs.add(prometheusFile, "job "+j.JobName+" static_configs.targets", "%s, but %s listens on %d (SECKILL_HTTP_ADDR)", t, name, port)
				}
			}
		}
		for _, d := range j.DNSSDConfigs {
			if !slices.Contains(d.Names, name) {
				continue
			}
			found = true
			if d.Port != port {
				fs.add(prometheusFile, "job "+j.JobName+" dns_sd_configs.port", "%d, but %s listens on %d (SECKILL_HTTP_ADDR)", d.Port, name, port)
			}
		}
	}
	return found
}

func selects(sel, podLabels map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(podLabels))
}

func labelSelects(sel *metav1.LabelSelector, podLabels map[string]string) (bool, error) {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return false, fmt.Errorf("empty selector")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(podLabels)), nil
}

// checkImagesPinned: every image (compose, Dockerfile FROM, Deployments,
// kustomize overrides) has a version tag or digest, never :latest.
func checkImagesPinned(f *files) findings {
	var fs findings
	if f.compose != nil {
		for _, name := range sortedKeys(f.compose.Services) {
			s := f.compose.Services[name]
			if s.Image == "" {
				if s.Build == nil {
					fs.add(composeFile, "services."+name, "neither image nor build")
				}
				continue
			}
			if msg := pinned(s.Image); msg != "" {
				fs.add(composeFile, "services."+name+".image", "%s", msg)
			}
		}
	}
	if f.dockerfile != nil {
		for _, st := range f.dockerfile.stages {
			if msg := pinned(st.image); msg != "" {
				fs.add(dockerfilePath, fmt.Sprintf("line %d FROM", st.line), "%s", msg)
			}
		}
	}
	for _, d := range objects[appsv1.Deployment](f) {
		for _, c := range append(d.v.Spec.Template.Spec.InitContainers, d.v.Spec.Template.Spec.Containers...) {
			if msg := pinned(c.Image); msg != "" {
				fs.add(d.file, d.where()+" container "+c.Name+" image", "%s", msg)
			}
		}
	}
	if f.kustomize != nil {
		for i, im := range f.kustomize.Images {
			if im.Digest == "" && (im.NewTag == "" || floatingTags[im.NewTag]) {
				fs.add(k8sDir+"/"+kustomizationFn, fmt.Sprintf("images[%d] %s", i, im.Name), "newTag %q: pin a version", im.NewTag)
			}
		}
	}
	return fs
}

// checkComposeDependsOn: every dependency waits for service_healthy, on a
// service that has a healthcheck; the seckill services wait for every backend
// their environment points at.
func checkComposeDependsOn(f *files) findings {
	var fs findings
	if !ready(f, &fs, "compose") {
		return fs
	}
	for _, name := range sortedKeys(f.compose.Services) {
		s := f.compose.Services[name]
		for _, dep := range sortedKeys(s.DependsOn) {
			where := "services." + name + ".depends_on." + dep
			if c := s.DependsOn[dep].Condition; c != "service_healthy" {
				fs.add(composeFile, where, "condition is %q: use service_healthy, so %s starts only once %s answers", c, name, dep)
			}
			d, ok := f.compose.Services[dep]
			if !ok {
				fs.add(composeFile, where, "no service %s", dep)
				continue
			}
			if d.HealthCheck == nil || d.HealthCheck.Disable || len(d.HealthCheck.Test) == 0 {
				fs.add(composeFile, "services."+dep+".healthcheck", "missing, but %s waits for it to be healthy", name)
			}
		}
	}
	for _, c := range composeSeckill(f, &fs) {
		for _, b := range backendHosts(c.env) {
			if _, ok := f.compose.Services[b.host]; !ok {
				fs.add(composeFile, "services."+c.name+".environment."+b.variable, "points at host %q, which is not a compose service", b.host)
				continue
			}
			if _, ok := c.svc.DependsOn[b.host]; !ok {
				fs.add(composeFile, "services."+c.name+".depends_on", "does not wait for %s (used through %s)", b.host, b.variable)
			}
		}
	}
	return fs
}

type backendHost struct{ variable, host string }

// backendHosts are the hosts a service's Redis URL, DSN and brokers name.
func backendHosts(env map[string]string) []backendHost {
	var out []backendHost
	if u, err := url.Parse(env["SECKILL_REDIS_URL"]); err == nil && u.Hostname() != "" {
		out = append(out, backendHost{"SECKILL_REDIS_URL", u.Hostname()})
	}
	if c, err := mysql.ParseDSN(env["SECKILL_DB_DSN"]); err == nil && hostOf(c.Addr) != "" {
		out = append(out, backendHost{"SECKILL_DB_DSN", hostOf(c.Addr)})
	}
	for _, b := range strings.Split(env["SECKILL_KAFKA_BROKERS"], ",") {
		if h := hostOf(strings.TrimSpace(b)); h != "" {
			out = append(out, backendHost{"SECKILL_KAFKA_BROKERS", h})
		}
	}
	return out
}

// checkComposeBackends: Redis, MySQL and Kafka are the brief's versions,
// configured the way the seckill services' URLs, DSN and brokers expect.
func checkComposeBackends(f *files) findings {
	var fs findings
	if !ready(f, &fs, "compose") {
		return fs
	}
	hc := func(name string) string {
		s := f.compose.Services[name]
		if s.HealthCheck == nil {
			return ""
		}
		return strings.Join(s.HealthCheck.Test, " ")
	}
	image := func(name, wantName, wantTagPrefix string) {
		n, tag, _, err := parseImage(f.compose.Services[name].Image)
		if err != nil || n != wantName || !strings.HasPrefix(tag, wantTagPrefix) {
			fs.add(composeFile, "services."+name+".image", "is %q, want %s:%s*", f.compose.Services[name].Image, wantName, wantTagPrefix)
		}
	}
	for _, c := range composeSeckill(f, &fs) {
		where := "services." + c.name + ".environment."
		if u, err := url.Parse(c.env["SECKILL_REDIS_URL"]); err == nil {
			if _, ok := f.compose.Services[u.Hostname()]; ok {
				r := u.Hostname()
				image(r, "redis", "7.2")
				if h := hc(r); !strings.Contains(h, "redis-cli") || !strings.Contains(h, "ping") {
					fs.add(composeFile, "services."+r+".healthcheck.test", "%q: use redis-cli ping", h)
				}
			}
		}
		if dsn, err := mysql.ParseDSN(c.env["SECKILL_DB_DSN"]); err != nil {
			fs.add(composeFile, where+"SECKILL_DB_DSN", "not a MySQL DSN: %v", err)
		} else if m, ok := f.compose.Services[hostOf(dsn.Addr)]; ok {
			mn := hostOf(dsn.Addr)
			image(mn, "mysql", "8.4")
			menv := composeEnv(m)
			if menv["MYSQL_DATABASE"] != dsn.DBName {
				fs.add(composeFile, "services."+mn+".environment.MYSQL_DATABASE", "is %q, but %s's DSN uses database %q", menv["MYSQL_DATABASE"], c.name, dsn.DBName)
			}
			if menv["MYSQL_DATABASE"] != "seckill" {
				fs.add(composeFile, "services."+mn+".environment.MYSQL_DATABASE", "is %q, want seckill", menv["MYSQL_DATABASE"])
			}
			user, pass := menv["MYSQL_USER"], menv["MYSQL_PASSWORD"]
			if dsn.User == "root" {
				user, pass = "root", menv["MYSQL_ROOT_PASSWORD"]
			}
			if dsn.User != user || dsn.Passwd != pass {
				fs.add(composeFile, where+"SECKILL_DB_DSN", "logs in as %q with a password that is not the one services.%s.environment creates for %q", dsn.User, mn, user)
			}
			if h := hc(mn); !strings.Contains(h, "mysqladmin") || !strings.Contains(h, "ping") {
				fs.add(composeFile, "services."+mn+".healthcheck.test", "%q: use mysqladmin ping", h)
			}
		}
		for _, b := range strings.Split(c.env["SECKILL_KAFKA_BROKERS"], ",") {
			b = strings.TrimSpace(b)
			k, ok := f.compose.Services[hostOf(b)]
			if !ok {
				continue // checkComposeDependsOn reports it
			}
			kn := hostOf(b)
			if n, _, _, _ := parseImage(k.Image); n != "apache/kafka" && n != "bitnami/kafka" {
				fs.add(composeFile, "services."+kn+".image", "is %q, want apache/kafka or bitnami/kafka", k.Image)
			}
			kenv := composeEnv(k)
			roles := kenv["KAFKA_PROCESS_ROLES"] + kenv["KAFKA_CFG_PROCESS_ROLES"]
			if !strings.Contains(roles, "broker") || !strings.Contains(roles, "controller") {
				fs.add(composeFile, "services."+kn+".environment.KAFKA_PROCESS_ROLES", "is %q: a single KRaft node is broker,controller", roles)
			}
			adv := kenv["KAFKA_ADVERTISED_LISTENERS"] + kenv["KAFKA_CFG_ADVERTISED_LISTENERS"]
			if !strings.Contains(adv, "://"+b) {
				fs.add(composeFile, "services."+kn+".environment.KAFKA_ADVERTISED_LISTENERS", "%q does not advertise %s, the broker %s is given", adv, b, c.name)
			}
			if h := hc(kn); !strings.Contains(h, "kafka-topics") && !strings.Contains(h, "kafka-broker-api-versions") {
				fs.add(composeFile, "services."+kn+".healthcheck.test", "%q: ask the broker (kafka-topics.sh --list or kafka-broker-api-versions.sh)", h)
			}
		}
		if c.spec.component == "order-worker" {
			cfg, err := loadConfig(c.env, c.spec)
			if err == nil && c.svc.GetScale() > cfg.KafkaPartitions {
				fs.add(composeFile, "services."+c.name+".deploy.replicas", "%d replicas but SECKILL_KAFKA_PARTITIONS is %d: the extra workers would sit idle", c.svc.GetScale(), cfg.KafkaPartitions)
			}
		}
	}
	return fs
}

// checkComposeHealthchecks: the seckill services check themselves with the
// image's binary (distroless has no shell or curl) and get longer than their
// drain to stop.
func checkComposeHealthchecks(f *files) findings {
	var fs findings
	if !ready(f, &fs, "compose", "dockerfile") {
		return fs
	}
	ep, err := f.dockerfile.entrypoint()
	if err != nil {
		fs.add(dockerfilePath, "ENTRYPOINT", "%v", err)
		return fs
	}
	want := append(append([]string{"CMD"}, ep...), "-healthcheck")
	for _, c := range composeSeckill(f, &fs) {
		base := "services." + c.name
		if c.svc.HealthCheck == nil || c.svc.HealthCheck.Disable {
			fs.add(composeFile, base+".healthcheck", "missing: want test %q", want)
		} else if !slices.Equal([]string(c.svc.HealthCheck.Test), want) {
			fs.add(composeFile, base+".healthcheck.test", "is %q, want %q (the image's binary; distroless has no shell or curl)", []string(c.svc.HealthCheck.Test), want)
		}
		cfg, err := loadConfig(c.env, c.spec)
		if err != nil {
			continue // checkConfigLoads reports it
		}
		grace := 10 * time.Second // compose's default
		if c.svc.StopGracePeriod != nil {
			grace = time.Duration(*c.svc.StopGracePeriod)
		}
		if grace <= cfg.ShutdownTimeout {
			fs.add(composeFile, base+".stop_grace_period", "is %s, not longer than SECKILL_SHUTDOWN_TIMEOUT (%s): docker would SIGKILL a draining process", grace, cfg.ShutdownTimeout)
		}
	}
	return fs
}

var (
	goBuildPkgRe = regexp.MustCompile(`\./gateway/cmd/\$\{?SERVICE\}?(\s|;|"|$)`)
	goBuildOutRe = regexp.MustCompile(`\s-o[= ](\S+)`)
	ldflagsRe    = regexp.MustCompile(`-ldflags[= ](?:'([^']*)'|"([^"]*)"|(\S+))`)
)

// checkDockerfile: multi-stage, Go 1.26 build stage making a static binary
// from ./gateway/cmd/$SERVICE, distroless static nonroot final stage.
func checkDockerfile(f *files) findings {
	var fs findings
	if !ready(f, &fs, "dockerfile") {
		return fs
	}
	d := f.dockerfile
	if len(d.stages) < 2 {
		fs.add(dockerfilePath, "FROM", "%d stage(s): build in one stage, run from a distroless one", len(d.stages))
		return fs
	}
	final := d.stages[len(d.stages)-1]
	if n, tag, _, err := parseImage(final.image); err != nil || !strings.HasPrefix(n, "gcr.io/distroless/static") || !strings.Contains(tag, "nonroot") {
		fs.add(dockerfilePath, fmt.Sprintf("line %d FROM", final.line), "final stage is %q, want gcr.io/distroless/static-debian12:nonroot", final.image)
	}
	users := final.find("USER")
	if len(users) == 0 {
		fs.add(dockerfilePath, "final stage", "no USER: set USER nonroot (65532)")
	} else if u := users[len(users)-1]; !slices.Contains([]string{"nonroot", "nonroot:nonroot", "65532", "65532:65532"}, u.args) {
		fs.add(dockerfilePath, fmt.Sprintf("line %d USER", u.line), "is %q, want nonroot (65532)", u.args)
	}

	// The build stage: the one that runs go build.
	var build *dockerStage
	var run dockerInstruction
	for i := range d.stages[:len(d.stages)-1] {
		for _, in := range d.stages[i].find("RUN") {
			if strings.Contains(in.args, "go build") {
				build, run = &d.stages[i], in
			}
		}
	}
	if build == nil {
		fs.add(dockerfilePath, "RUN", "no stage before the final one runs go build")
		return fs
	}
	if n, tag, _, err := parseImage(build.image); err != nil || n != "golang" || !(tag == "1.26" || strings.HasPrefix(tag, "1.26.") || strings.HasPrefix(tag, "1.26-")) {
		fs.add(dockerfilePath, fmt.Sprintf("line %d FROM", build.line), "build stage is %q, want golang:1.26 (go.work says go 1.26)", build.image)
	}
	where := fmt.Sprintf("line %d RUN go build", run.line)
	cgoOff := strings.Contains(run.args, "CGO_ENABLED=0")
	for _, e := range build.find("ENV") {
		cgoOff = cgoOff || strings.Contains(e.args, "CGO_ENABLED=0")
	}
	if !cgoOff {
		fs.add(dockerfilePath, where, "CGO_ENABLED=0 is not set: the binary would link libc, which distroless/static lacks")
	}
	if !strings.Contains(run.args, "-trimpath") {
		fs.add(dockerfilePath, where, "no -trimpath")
	}
	if m := ldflagsRe.FindStringSubmatch(run.args); m == nil || !slices.Contains(strings.Fields(m[1]+m[2]+m[3]), "-s") || !slices.Contains(strings.Fields(m[1]+m[2]+m[3]), "-w") {
		fs.add(dockerfilePath, where, "no -ldflags='-s -w'")
	}
	if !goBuildPkgRe.MatchString(run.args) {
		fs.add(dockerfilePath, where, "does not build ./gateway/cmd/$SERVICE")
	}
	for _, s := range seckillServices {
		if s.cmdDir != "" && !strings.Contains(run.args, "./"+s.cmdDir+"/$SERVICE") {
			fs.add(dockerfilePath, where, "does not build ./%s/$SERVICE for SERVICE=%s", s.cmdDir, s.binary)
		}
	}
	if def, ok := build.argDefault("SERVICE"); !ok {
		fs.add(dockerfilePath, "build stage ARG", "no ARG SERVICE with a default (%s)", strings.Join(allBinaries, "|"))
	} else if !slices.Contains(allBinaries, def) {
		fs.add(dockerfilePath, "build stage ARG SERVICE", "default %q is not one of %s", def, strings.Join(allBinaries, ", "))
	}
	copiesWork := false
	for _, c := range build.find("COPY") {
		w := strings.Fields(c.args)
		for _, src := range w[:max(0, len(w)-1)] {
			copiesWork = copiesWork || src == "." || src == "./" || src == "go.work"
		}
	}
	if !copiesWork {
		fs.add(dockerfilePath, "build stage COPY", "does not copy go.work and the modules (COPY . .): the workspace build needs them")
	}

	// The binary lands where ENTRYPOINT runs it.
	ep, err := d.entrypoint()
	if err != nil {
		fs.add(dockerfilePath, "ENTRYPOINT", "%v", err)
		return fs
	}
	out := goBuildOutRe.FindStringSubmatch(run.args)
	if out == nil {
		fs.add(dockerfilePath, where, "no -o: where does the binary go?")
		return fs
	}
	copied := false
	for _, c := range final.find("COPY") {
		w := strings.Fields(c.args)
		from := ""
		var rest []string
		for _, x := range w {
			if v, ok := strings.CutPrefix(x, "--from="); ok {
				from = v
			} else if !strings.HasPrefix(x, "--") {
				rest = append(rest, x)
			}
		}
		if from == build.name && len(rest) == 2 && rest[0] == out[1] && rest[1] == ep[0] {
			copied = true
		}
	}
	if !copied {
		fs.add(dockerfilePath, "final stage COPY", "no COPY --from=%s %s %s: ENTRYPOINT runs %s", build.name, out[1], ep[0], ep[0])
	}
	for _, h := range final.find("HEALTHCHECK") {
		cmd := strings.TrimSpace(h.args[strings.Index(h.args, "CMD")+len("CMD"):])
		var argv []string
		if err := json.Unmarshal([]byte(cmd), &argv); err != nil || !slices.Equal(argv, append(slices.Clone(ep), "-healthcheck")) {
			fs.add(dockerfilePath, fmt.Sprintf("line %d HEALTHCHECK", h.line), "runs %s, want [%q, \"-healthcheck\"]", cmd, ep[0])
		}
	}
	return fs
}

// checkBuildTargets: every SERVICE the files build (compose build args, the
// Dockerfile's default, the Deployments' images) is a main package at
// ./gateway/cmd/<SERVICE>.
func checkBuildTargets(f *files) findings {
	var fs findings
	need := func(bin, file, where string) {
		if !mainPackageIn(filepath.Join(f.root, cmdDirOf(bin), bin)) {
			fs.add(file, where, "builds %s, but %s/%s holds no main package", bin, cmdDirOf(bin), bin)
		}
	}
	if f.compose != nil {
		for _, name := range sortedKeys(f.compose.Services) {
			s := f.compose.Services[name]
			if s.Build == nil {
				continue
			}
			ctx := s.Build.Context // the loader resolves it against the compose file's directory
			if !filepath.IsAbs(ctx) {
				ctx = filepath.Join(f.root, ctx)
			}
			if filepath.Clean(ctx) != filepath.Clean(f.root) {
				fs.add(composeFile, "services."+name+".build.context", "is %q: build from the repository root (go.work needs every module)", s.Build.Context)
			}
			if filepath.ToSlash(filepath.Clean(s.Build.Dockerfile)) != dockerfilePath {
				fs.add(composeFile, "services."+name+".build.dockerfile", "is %q, want %s", s.Build.Dockerfile, dockerfilePath)
			}
			if arg := s.Build.Args["SERVICE"]; arg != nil {
				need(*arg, composeFile, "services."+name+".build.args.SERVICE")
			}
		}
	}
	if f.dockerfile != nil {
		for _, st := range f.dockerfile.stages {
			if def, ok := st.argDefault("SERVICE"); ok {
				need(def, dockerfilePath, fmt.Sprintf("stage at line %d ARG SERVICE default", st.line))
			}
		}
	}
	var fs2 findings // workloads' own findings are other checks'
	for _, w := range workloads(f, &fs2) {
		n, _, _, err := parseImage(w.c.Image)
		if err != nil {
			continue
		}
		if base := n[strings.LastIndex(n, "/")+1:]; base != w.spec.binary {
			fs.add(w.file, w.where()+" container "+w.c.Name+" image", "%q is named %s, want an image named %s (SERVICE=%s)", w.c.Image, base, w.spec.binary, w.spec.binary)
		}
		need(w.spec.binary, w.file, w.where())
	}
	return fs
}

// checkDockerignore: state, build output and history stay out of the build
// context; go.work and every module it names stay in.
func checkDockerignore(f *files) findings {
	var fs findings
	if f.ignore == nil {
		fs.add(dockerignoreFile, "", "no patterns")
		return fs
	}
	for _, p := range []string{".git", "data", "bin"} {
		if !ignored(f.ignore, p) {
			fs.add(dockerignoreFile, "", "does not exclude %s/", p)
		}
	}
	keep := []string{"go.work", "go.work.sum", dockerfilePath}
	for _, m := range f.workModules {
		keep = append(keep, m+"/go.mod")
	}
	for _, b := range allBinaries {
		keep = append(keep, cmdDirOf(b)+"/"+b+"/main.go")
	}
	for _, p := range keep {
		if ignored(f.ignore, p) {
			fs.add(dockerignoreFile, "", "excludes %s, which the image build needs", p)
		}
	}
	return fs
}

// checkK8sProbes: liveness on /healthz, readiness on /readyz (backends
// reachable), startup (if any) on /healthz.
func checkK8sProbes(f *files) findings {
	var fs findings
	for _, w := range workloads(f, &fs) {
		base := w.where() + " container " + w.c.Name
		for _, p := range []struct {
			name     string
			probe    *corev1.Probe
			path     string
			required bool
		}{
			{"livenessProbe", w.c.LivenessProbe, "/healthz", true},
			{"readinessProbe", w.c.ReadinessProbe, "/readyz", true},
			{"startupProbe", w.c.StartupProbe, "/healthz", false},
		} {
			switch {
			case p.probe == nil && p.required:
				fs.add(w.file, base+" "+p.name, "missing: want httpGet %s", p.path)
			case p.probe == nil:
			case p.probe.HTTPGet == nil:
				fs.add(w.file, base+" "+p.name, "not an httpGet probe: want httpGet %s", p.path)
			case p.probe.HTTPGet.Path != p.path:
				fs.add(w.file, base+" "+p.name+".httpGet.path", "is %q, want %s", p.probe.HTTPGet.Path, p.path)
			}
		}
	}
	return fs
}

// checkK8sPods: nonroot, read-only root filesystem, no privilege escalation,
// no capabilities, resources for the HPA, a grace period longer than the
// drain, no service links, scrape annotations.
func checkK8sPods(f *files) findings {
	var fs findings
	for _, w := range workloads(f, &fs) {
		pod := w.v.Spec.Template.Spec
		base := w.where() + " spec.template.spec"
		cbase := w.where() + " container " + w.c.Name
		psc, csc := pod.SecurityContext, w.c.SecurityContext
		nonRoot := (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot) || (csc != nil && csc.RunAsNonRoot != nil && *csc.RunAsNonRoot)
		if !nonRoot {
			fs.add(w.file, base+".securityContext.runAsNonRoot", "not true")
		}
		if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 || csc != nil && csc.RunAsUser != nil && *csc.RunAsUser == 0 {
			fs.add(w.file, base+".securityContext.runAsUser", "is 0 (root)")
		}
		if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			fs.add(w.file, cbase+" securityContext.readOnlyRootFilesystem", "not true")
		}
		if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			fs.add(w.file, cbase+" securityContext.allowPrivilegeEscalation", "not false")
		}
		if csc == nil || csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
			fs.add(w.file, cbase+" securityContext.capabilities.drop", "does not drop ALL")
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := w.c.Resources.Requests[r]; !ok || q.IsZero() {
				fs.add(w.file, cbase+" resources.requests."+string(r), "not set (the scheduler and the HPA's utilization need it)")
			}
		}
		if q, ok := w.c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
			fs.add(w.file, cbase+" resources.limits.memory", "not set")
		}
		if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
			fs.add(w.file, base+".enableServiceLinks", "not false: Service links put SECKILL_GATEWAY_* style variables into every pod")
		}
		cfg, err := loadConfig(w.env, w.spec)
		if err == nil {
			grace := int64(30) // Kubernetes' default
			if pod.TerminationGracePeriodSeconds != nil {
				grace = *pod.TerminationGracePeriodSeconds
			}
			need := cfg.ShutdownTimeout
			if w.c.Lifecycle != nil && w.c.Lifecycle.PreStop != nil && w.c.Lifecycle.PreStop.Sleep != nil {
				need += time.Duration(w.c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}
			if time.Duration(grace)*time.Second <= need {
				fs.add(w.file, base+".terminationGracePeriodSeconds", "is %d, not longer than SECKILL_SHUTDOWN_TIMEOUT plus the preStop sleep (%s): the kubelet would SIGKILL a draining process", grace, need)
			}
		}
		ann := w.v.Spec.Template.Annotations
		if ann["prometheus.io/scrape"] != "true" {
			fs.add(w.file, w.where()+" spec.template.metadata.annotations[prometheus.io/scrape]", "is %q, want \"true\"", ann["prometheus.io/scrape"])
		}
		if p := ann["prometheus.io/path"]; p != "/metrics" {
			fs.add(w.file, w.where()+" spec.template.metadata.annotations[prometheus.io/path]", "is %q, want /metrics", p)
		}
	}
	return fs
}

// checkK8sSelectors: Deployment selectors match their pods; each Service and
// PDB selects exactly one Deployment's pods; every Deployment has a PDB and an
// HPA; the order-worker HPA stops at the partition count.
func checkK8sSelectors(f *files) findings {
	var fs findings
	ws := workloads(f, &fs)
	for _, w := range ws {
		if ok, err := labelSelects(w.v.Spec.Selector, w.v.Spec.Template.Labels); err != nil {
			fs.add(w.file, w.where()+" spec.selector", "%v", err)
		} else if !ok {
			fs.add(w.file, w.where()+" spec.selector", "does not match spec.template.metadata.labels %v", w.v.Spec.Template.Labels)
		}
	}
	matching := func(match func(podLabels map[string]string) bool) []string {
		var names []string
		for _, w := range ws {
			if match(w.v.Spec.Template.Labels) {
				names = append(names, w.meta.Name)
			}
		}
		return names
	}
	for _, s := range objects[corev1.Service](f) {
		if got := matching(func(l map[string]string) bool { return selects(s.v.Spec.Selector, l) }); len(got) != 1 {
			fs.add(s.file, s.where()+" spec.selector", "%v selects the pods of %d Deployments %v, want exactly one", s.v.Spec.Selector, len(got), got)
		}
	}
	pdbFor := map[string]*policyv1.PodDisruptionBudget{}
	for _, p := range objects[policyv1.PodDisruptionBudget](f) {
		got := matching(func(l map[string]string) bool { ok, _ := labelSelects(p.v.Spec.Selector, l); return ok })
		if len(got) != 1 {
			fs.add(p.file, p.where()+" spec.selector", "selects the pods of %d Deployments %v, want exactly one", len(got), got)
		}
		for _, n := range got {
			pdbFor[n] = p.v
		}
		if p.v.Spec.MinAvailable == nil && p.v.Spec.MaxUnavailable == nil {
			fs.add(p.file, p.where()+" spec", "neither minAvailable nor maxUnavailable")
		}
	}
	hpaFor := map[string][]*autoscalingv2.HorizontalPodAutoscaler{}
	for _, h := range objects[autoscalingv2.HorizontalPodAutoscaler](f) {
		ref := h.v.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			fs.add(h.file, h.where()+" spec.scaleTargetRef", "is %s %s, want apps/v1 Deployment", ref.APIVersion, ref.Kind)
		}
		if !slices.ContainsFunc(ws, func(w workload) bool { return w.meta.Name == ref.Name }) {
			fs.add(h.file, h.where()+" spec.scaleTargetRef.name", "no Deployment %q", ref.Name)
		}
		hpaFor[ref.Name] = append(hpaFor[ref.Name], h.v)
		cpu := slices.ContainsFunc(h.v.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
		})
		if !cpu {
			fs.add(h.file, h.where()+" spec.metrics", "no cpu Resource metric")
		}
		if h.v.Spec.MinReplicas == nil || *h.v.Spec.MinReplicas < 1 || *h.v.Spec.MinReplicas > h.v.Spec.MaxReplicas {
			fs.add(h.file, h.where()+" spec", "minReplicas must be set, at least 1 and at most maxReplicas (%d)", h.v.Spec.MaxReplicas)
		}
	}
	for _, w := range ws {
		pdb := pdbFor[w.meta.Name]
		if pdb == nil {
			fs.add(w.file, w.where(), "no PodDisruptionBudget selects its pods")
		}
		hs := hpaFor[w.meta.Name]
		if len(hs) != 1 {
			fs.add(w.file, w.where(), "%d HorizontalPodAutoscalers target it, want one", len(hs))
			continue
		}
		h := hs[0]
		if h.Spec.MinReplicas != nil && pdb != nil && pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.IntValue() >= int(*h.Spec.MinReplicas) {
			fs.add(w.file, w.where(), "its PDB's minAvailable %s is not below the HPA's minReplicas %d: no node could ever be drained", pdb.Spec.MinAvailable.String(), *h.Spec.MinReplicas)
		}
		if r := w.v.Spec.Replicas; r != nil && h.Spec.MinReplicas != nil && (*r < *h.Spec.MinReplicas || *r > h.Spec.MaxReplicas) {
			fs.add(w.file, w.where()+" spec.replicas", "%d is outside its HPA's %d..%d", *r, *h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if w.spec.component == "order-worker" {
			cfg, err := loadConfig(w.env, w.spec)
			if err == nil && int(h.Spec.MaxReplicas) > cfg.KafkaPartitions {
				fs.add(w.file, w.where(), "its HPA allows %d replicas but SECKILL_KAFKA_PARTITIONS is %d: one partition feeds one consumer, the rest would sit idle", h.Spec.MaxReplicas, cfg.KafkaPartitions)
			}
		}
	}
	return fs
}

// checkK8sSecrets: the committed Secret holds placeholders only, as
// stringData; the ConfigMap holds no secret.
func checkK8sSecrets(f *files) findings {
	var fs findings
	secrets := objects[corev1.Secret](f)
	if len(secrets) == 0 {
		fs.add(k8sDir, "", "no Secret")
	}
	for _, s := range secrets {
		if len(s.v.Data) > 0 {
			fs.add(s.file, s.where()+" data", "base64 data hides what is committed: use stringData with %s placeholders", placeholderMarker)
		}
		for _, k := range sortedKeys(s.v.StringData) {
			if !strings.Contains(s.v.StringData[k], placeholderMarker) {
				fs.add(s.file, s.where()+" stringData."+k, "is not a %s placeholder: never commit a real secret", placeholderMarker)
			}
		}
		for _, k := range secretVars {
			if _, ok := s.v.StringData[k]; !ok {
				fs.add(s.file, s.where()+" stringData", "has no %s", k)
			}
		}
	}
	for _, cm := range objects[corev1.ConfigMap](f) {
		for _, k := range secretVars {
			if _, ok := cm.v.Data[k]; ok {
				fs.add(cm.file, cm.where()+" data."+k, "is a secret: put it in the Secret")
			}
		}
		if u, err := url.Parse(cm.v.Data["SECKILL_REDIS_URL"]); err == nil && u.User != nil {
			fs.add(cm.file, cm.where()+" data.SECKILL_REDIS_URL", "carries credentials: put it in the Secret")
		}
		for _, k := range []string{"SECKILL_SMTP_PASSWORD", "SECKILL_SMS_WEBHOOK_AUTH_HEADER"} {
			if _, ok := cm.v.Data[k]; ok {
				fs.add(cm.file, cm.where()+" data."+k, "is a secret: put it in the Secret")
			}
		}
		if u, err := url.Parse(cm.v.Data["SECKILL_SMTP_URL"]); err == nil && u.User != nil {
			fs.add(cm.file, cm.where()+" data.SECKILL_SMTP_URL", "carries credentials: put it in the Secret")
		}
	}
	return fs
}

// checkK8sKustomization: one Namespace and everything in it; the
// kustomization lists every manifest and overrides existing images.
func checkK8sKustomization(f *files) findings {
	var fs findings
	var ns []string
	for _, n := range objects[corev1.Namespace](f) {
		ns = append(ns, n.meta.Name)
	}
	if len(ns) != 1 {
		fs.add(k8sDir, "", "%d Namespaces %v, want one", len(ns), ns)
		return fs
	}
	for _, o := range f.k8s {
		if strings.HasSuffix(o.kind, "/Namespace") {
			continue
		}
		if o.meta.Namespace != ns[0] {
			fs.add(o.file, o.where()+" metadata.namespace", "is %q, want %s", o.meta.Namespace, ns[0])
		}
	}
	if !ready(f, &fs, "kustomize") {
		return fs
	}
	kf := k8sDir + "/" + kustomizationFn
	if f.kustomize.Namespace != ns[0] {
		fs.add(kf, "namespace", "is %q, want %s", f.kustomize.Namespace, ns[0])
	}
	for _, r := range f.kustomize.Resources {
		if !slices.Contains(f.k8sFiles, r) {
			fs.add(kf, "resources", "lists %s, which is not a manifest in %s", r, k8sDir)
		}
	}
	for _, m := range f.k8sFiles {
		if !slices.Contains(f.kustomize.Resources, m) {
			fs.add(kf, "resources", "does not list %s: kubectl apply -k would skip it", m)
		}
	}
	var images []string
	for _, d := range objects[appsv1.Deployment](f) {
		for _, c := range d.v.Spec.Template.Spec.Containers {
			if n, _, _, err := parseImage(c.Image); err == nil {
				images = append(images, n)
			}
		}
	}
	for i, im := range f.kustomize.Images {
		if !slices.Contains(images, im.Name) {
			fs.add(kf, fmt.Sprintf("images[%d].name", i), "%q is no Deployment's image %v", im.Name, images)
		}
	}
	return fs
}

// checkPrometheus: the compose jobs are checked with the ports (checkPorts);
// here, the kubernetes_sd job keeps the annotated pods and takes their port
// and path from the annotations.
func checkPrometheus(f *files) findings {
	var fs findings
	if !ready(f, &fs, "prometheus") {
		return fs
	}
	var ns []string
	for _, n := range objects[corev1.Namespace](f) {
		ns = append(ns, n.meta.Name)
	}
	found := false
	for _, j := range f.prometheus.ScrapeConfigs {
		where := "job " + j.JobName
		if j.MetricsPath != "" && j.MetricsPath != "/metrics" {
			fs.add(prometheusFile, where+".metrics_path", "is %q, the services serve /metrics", j.MetricsPath)
		}
		for _, sc := range j.StaticConfigs {
			for _, t := range sc.Targets {
				if h := hostOf(t); h == "" || (f.compose != nil && h != "localhost" && !hasService(f, h)) {
					fs.add(prometheusFile, where+".static_configs.targets", "%q is not host:port of a compose service", t)
				}
			}
		}
		for _, d := range j.DNSSDConfigs {
			for _, n := range d.Names {
				if f.compose != nil && !hasService(f, n) {
					fs.add(prometheusFile, where+".dns_sd_configs.names", "%q is not a compose service", n)
				}
			}
		}
		for _, k := range j.KubernetesSDConfigs {
			if k.Role != "pod" {
				continue
			}
			found = true
			for _, n := range ns {
				if len(k.Namespaces.Names) > 0 && !slices.Contains(k.Namespaces.Names, n) {
					fs.add(prometheusFile, where+".kubernetes_sd_configs.namespaces", "%v leaves out %s", k.Namespaces.Names, n)
				}
			}
			has := func(src, action, target string) bool {
				return slices.ContainsFunc(j.RelabelConfigs, func(r relabelConfig) bool {
					a := r.Action
					if a == "" {
						a = "replace"
					}
					return slices.Contains(r.SourceLabels, src) && a == action && r.TargetLabel == target
				})
			}
			keep := slices.ContainsFunc(j.RelabelConfigs, func(r relabelConfig) bool {
				return slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_annotation_prometheus_io_scrape"}) && r.Action == "keep" && r.Regex == "true"
			})
			if !keep {
				fs.add(prometheusFile, where+".relabel_configs", "no keep of __meta_kubernetes_pod_annotation_prometheus_io_scrape = \"true\"")
			}
			if !has("__meta_kubernetes_pod_annotation_prometheus_io_port", "replace", "__address__") {
				fs.add(prometheusFile, where+".relabel_configs", "__address__ does not take prometheus.io/port")
			}
			if !has("__meta_kubernetes_pod_annotation_prometheus_io_path", "replace", "__metrics_path__") {
				fs.add(prometheusFile, where+".relabel_configs", "__metrics_path__ does not take prometheus.io/path")
			}
		}
	}
	if !found {
		fs.add(prometheusFile, "scrape_configs", "no kubernetes_sd_configs job with role: pod")
	}
	return fs
}

// checkReadme: deploy/README.md tells how to build, run and apply.
func checkReadme(f *files) findings {
	var fs findings
	text, ok := f.raw[deployReadme]
	if !ok {
		return fs // parse reports it
	}
	for _, want := range []string{
		"docker build -f " + dockerfilePath, "--build-arg SERVICE=", "docker compose up --build",
		"kubectl apply -k " + k8sDir, placeholderMarker, "SECKILL_KAFKA_PARTITIONS", "Grafana",
	} {
		if !strings.Contains(text, want) {
			fs.add(deployReadme, "", "does not mention %q", want)
		}
	}
	return fs
}

func hasService(f *files, name string) bool {
	_, ok := f.compose.Services[name]
	return ok
}
