package deploy

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"
	"github.com/flashsale/seckill/gateway/config"
	"github.com/flashsale/seckill/notifier/delivery"
	"github.com/flashsale/seckill/order/service"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// serviceSpec is what a split service needs, from the brief and the binaries.
type serviceSpec struct {
	binary    string   // ./<cmdDir>/<binary>; the Dockerfile's SERVICE build arg; the image's name
	component string   // app.kubernetes.io/component of its pods
	required  []string // variables it cannot run without
	forbidden []string // secrets it does not use and must not be handed
	cmdDir    string   // where its main package lives, when not cmdDir (gateway/cmd)
}

var seckillServices = []serviceSpec{
	{
		binary:    "seckill-gateway",
		component: "gateway",
		required: []string{
			"SECKILL_HTTP_ADDR", "SECKILL_MQ", "SECKILL_KAFKA_BROKERS", "SECKILL_REDIS_URL",
			"SECKILL_DB_DSN", "SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN",
		},
	},
	{
		binary:    "seckill-order-worker",
		component: "order-worker",
		required: []string{
			"SECKILL_HTTP_ADDR", "SECKILL_MQ", "SECKILL_KAFKA_BROKERS", "SECKILL_REDIS_URL",
			"SECKILL_DB_DSN", "SECKILL_WORKER_CONCURRENCY", "SECKILL_WORKER_BATCH",
		},
		forbidden: []string{"SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN"},
		cmdDir:    "order/cmd",
	},
	{
		binary:    "seckill-notifier",
		component: "notifier",
		required: []string{
			"SECKILL_HTTP_ADDR", "SECKILL_MQ", "SECKILL_KAFKA_BROKERS", "SECKILL_DB_DSN", "SECKILL_SMTP_URL",
		},
		forbidden: []string{"SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN", "SECKILL_REDIS_URL"},
		cmdDir:    "notifier/cmd",
	},
}

// allBinaries are the values the Dockerfile's SERVICE accepts.
var allBinaries = []string{"seckill", "seckill-gateway", "seckill-order-worker", "seckill-notifier"}

// cmdDirOf is the directory holding binary's main package directory.
func cmdDirOf(binary string) string {
	if s, ok := specByBinary(binary); ok && s.cmdDir != "" {
		return s.cmdDir
	}
	return cmdDir
}

// secretVars never go into a ConfigMap or a log; they belong in a Secret.
var secretVars = []string{"SECKILL_JWT_SECRET", "SECKILL_ADMIN_TOKEN", "SECKILL_DB_DSN"}

// placeholderMarker marks every value of the committed Secret.
const placeholderMarker = "CHANGE_ME"

func specByBinary(b string) (serviceSpec, bool) {
	for _, s := range seckillServices {
		if s.binary == b {
			return s, true
		}
	}
	return serviceSpec{}, false
}

func specByComponent(c string) (serviceSpec, bool) {
	for _, s := range seckillServices {
		if s.component == c {
			return s, true
		}
	}
	return serviceSpec{}, false
}

var knownNames = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range config.Names() {
		m[n] = true
	}
	return m
}()

// loadConfig runs the real configuration loader of the service over env, as
// the service does at start (the order worker's loader needs no auth secrets).
func loadConfig(env map[string]string, spec serviceSpec) (config.Config, error) {
	get := func(k string) string { return env[k] }
	if spec.binary == "seckill-order-worker" {
		// The worker's own loader (order/service: the order module does
		// not import the gateway); the checks read its shared settings.
		w, err := service.LoadProcessConfig(get)
		return config.Config{Shared: w.Shared, Demo: w.Demo}, err
	}
	if spec.binary == "seckill-notifier" {
		// The notifier has its own loader (it does not import the
		// gateway); the checks read these fields of it.
		s, err := delivery.LoadProcessConfig(get)
		return config.Config{Shared: service.Shared{
			HTTPAddr: s.HTTPAddr, ShutdownTimeout: s.ShutdownTimeout, KafkaPartitions: s.KafkaPartitions,
		}}, err
	}
	return config.Load(get)
}

// addrPort is the port of a SECKILL_HTTP_ADDR value (default :8080).
func addrPort(addr string) (int, error) {
	if addr == "" {
		addr = ":8080"
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("SECKILL_HTTP_ADDR %q is not host:port", addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("SECKILL_HTTP_ADDR %q has no numeric port", addr)
	}
	return n, nil
}

// ---------------------------------------------------------------- images

var floatingTags = map[string]bool{"latest": true, "stable": true, "edge": true, "main": true, "master": true, "nightly": true}

// parseImage splits an image reference into its familiar name, tag and digest.
func parseImage(img string) (name, tag, digest string, err error) {
	if strings.Contains(img, "$") {
		return "", "", "", fmt.Errorf("image %q uses a variable: write the pinned image literally", img)
	}
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return "", "", "", fmt.Errorf("image %q: %v", img, err)
	}
	name = reference.FamiliarName(ref)
	if t, ok := ref.(reference.Tagged); ok {
		tag = t.Tag()
	}
	if d, ok := ref.(reference.Digested); ok {
		digest = d.Digest().String()
	}
	return name, tag, digest, nil
}

// pinned says what is wrong with an image reference's version, or "".
func pinned(img string) string {
	_, tag, digest, err := parseImage(img)
	switch {
	case err != nil:
		return err.Error()
	case digest != "":
		return ""
	case tag == "":
		return fmt.Sprintf("image %q has no tag: pin a version (it would pull :latest)", img)
	case floatingTags[tag]:
		return fmt.Sprintf("image %q uses the floating tag %q: pin a version", img, tag)
	}
	return ""
}

// ---------------------------------------------------------------- compose

type composeService struct {
	name string
	svc  types.ServiceConfig
	spec serviceSpec
	env  map[string]string
}

func composeEnv(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		} else {
			env[k] = ""
		}
	}
	return env
}

// composeSeckill returns the compose services built from the Dockerfile,
// with the spec their SERVICE build arg names; problems go to fs.
func composeSeckill(f *files, fs *findings) []composeService {
	var out []composeService
	for _, name := range sortedKeys(f.compose.Services) {
		s := f.compose.Services[name]
		if s.Build == nil {
			continue
		}
		where := "services." + name + ".build.args.SERVICE"
		arg, ok := s.Build.Args["SERVICE"]
		if !ok || arg == nil || *arg == "" {
			fs.add(composeFile, where, "a service built from %s must set SERVICE (one of %s)", dockerfilePath, strings.Join(allBinaries, ", "))
			continue
		}
		spec, ok := specByBinary(*arg)
		if !ok {
			if slices.Contains(allBinaries, *arg) {
				continue // the all-in-one: no split-service rules
			}
			fs.add(composeFile, where, "%q is not a service the Dockerfile builds (%s)", *arg, strings.Join(allBinaries, ", "))
			continue
		}
		out = append(out, composeService{name: name, svc: s, spec: spec, env: composeEnv(s)})
	}
	for _, spec := range seckillServices {
		if !slices.ContainsFunc(out, func(c composeService) bool { return c.spec.binary == spec.binary }) {
			fs.add(composeFile, "services", "no service is built with SERVICE: %s", spec.binary)
		}
	}
	return out
}

// hostOf returns the host of host:port, or "" if s is not host:port.
func hostOf(s string) string {
	h, _, err := net.SplitHostPort(s)
	if err != nil {
		return ""
	}
	return h
}

// ---------------------------------------------------------------- kubernetes

// workload is a Deployment with its service spec, its main container and the
// environment that container gets (envFrom, then env, resolved against the
// ConfigMaps and Secrets of the manifests).
type workload struct {
	typed[appsv1.Deployment]
	spec serviceSpec
	c    *corev1.Container
	env  map[string]string
}

// workloads resolves every Deployment; problems go to fs.
func workloads(f *files, fs *findings) []workload {
	var out []workload
	for _, d := range objects[appsv1.Deployment](f) {
		comp := d.v.Spec.Template.Labels["app.kubernetes.io/component"]
		spec, ok := specByComponent(comp)
		if !ok {
			fs.add(d.file, d.where()+" spec.template.metadata.labels", "app.kubernetes.io/component %q is not a seckill service (want one of gateway, order-worker)", comp)
			continue
		}
		var c *corev1.Container
		cs := d.v.Spec.Template.Spec.Containers
		for i := range cs {
			if cs[i].Name == spec.component {
				c = &cs[i]
			}
		}
		if c == nil && len(cs) == 1 {
			c = &cs[0]
		}
		if c == nil {
			fs.add(d.file, d.where()+" spec.template.spec.containers", "no container named %q", spec.component)
			continue
		}
		w := workload{typed: d, spec: spec, c: c, env: map[string]string{}}
		where := fmt.Sprintf("%s container %s", d.where(), c.Name)
		for _, ef := range c.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				cm := findConfigMap(f, ef.ConfigMapRef.Name)
				if cm == nil {
					fs.add(d.file, where+" envFrom", "ConfigMap %q is not in %s", ef.ConfigMapRef.Name, k8sDir)
					continue
				}
				for k, v := range cm.Data {
					w.env[ef.Prefix+k] = v
				}
			case ef.SecretRef != nil:
				s := findSecret(f, ef.SecretRef.Name)
				if s == nil {
					fs.add(d.file, where+" envFrom", "Secret %q is not in %s", ef.SecretRef.Name, k8sDir)
					continue
				}
				for k, v := range secretValues(s) {
					w.env[ef.Prefix+k] = v
				}
			}
		}
		for _, e := range c.Env {
			ewhere := where + " env " + e.Name
			switch {
			case e.ValueFrom == nil:
				w.env[e.Name] = e.Value
			case e.ValueFrom.ConfigMapKeyRef != nil:
				ref := e.ValueFrom.ConfigMapKeyRef
				cm := findConfigMap(f, ref.Name)
				v, ok := "", false
				if cm != nil {
					v, ok = cm.Data[ref.Key]
				}
				if !ok {
					fs.add(d.file, ewhere, "configMapKeyRef %s/%s does not exist in %s", ref.Name, ref.Key, k8sDir)
					continue
				}
				w.env[e.Name] = v
			case e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef
				s := findSecret(f, ref.Name)
				v, ok := "", false
				if s != nil {
					v, ok = secretValues(s)[ref.Key]
				}
				if !ok {
					fs.add(d.file, ewhere, "secretKeyRef %s/%s does not exist in %s", ref.Name, ref.Key, k8sDir)
					continue
				}
				w.env[e.Name] = v
			default:
				w.env[e.Name] = "" // fieldRef, resourceFieldRef: known only in the cluster
			}
		}
		out = append(out, w)
	}
	for _, spec := range seckillServices {
		if !slices.ContainsFunc(out, func(w workload) bool { return w.spec.component == spec.component }) {
			fs.add(k8sDir, "", "no Deployment has pods labelled app.kubernetes.io/component: %s", spec.component)
		}
	}
	return out
}

func findConfigMap(f *files, name string) *corev1.ConfigMap {
	for _, cm := range objects[corev1.ConfigMap](f) {
		if cm.meta.Name == name {
			return cm.v
		}
	}
	return nil
}

func findSecret(f *files, name string) *corev1.Secret {
	for _, s := range objects[corev1.Secret](f) {
		if s.meta.Name == name {
			return s.v
		}
	}
	return nil
}

func secretValues(s *corev1.Secret) map[string]string {
	m := map[string]string{}
	for k, v := range s.Data {
		m[k] = string(v)
	}
	for k, v := range s.StringData {
		m[k] = v
	}
	return m
}

// containerPort resolves a probe or Service port (number or name) against c.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int, bool) {
	if p.Type == intstr.Int {
		return p.IntValue(), p.IntValue() > 0
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), true
		}
	}
	return 0, false
}

// ---------------------------------------------------------------- misc

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

var mainPackageRe = regexp.MustCompile(`(?m)^package main\s*$`)

// mainPackageIn reports whether dir holds a Go main package.
func mainPackageIn(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil && mainPackageRe.Match(b) {
			return true
		}
	}
	return false
}
