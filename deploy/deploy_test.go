package deploy

import (
	"sync"
	"testing"
)

// The repository's files, parsed once for every test.
var repo = sync.OnceValue(func() *files { return load(repoRoot) })

// runCheck fails t with every finding of the check named name.
func runCheck(t *testing.T, name string) {
	t.Helper()
	for _, c := range allChecks {
		if c.name != name {
			continue
		}
		for _, f := range c.run(repo()) {
			t.Error(f)
		}
		return
	}
	t.Fatalf("no check %q", name)
}

// Every file parses: compose through the Compose spec loader, the manifests
// strictly into the Kubernetes API types, Prometheus and kustomize strictly.
func TestFilesParse(t *testing.T) { runCheck(t, "parse") }

// Every SECKILL_* name in compose, the ConfigMap, the Secret, the Deployments
// and any other deployment file is one config.Names() lists.
func TestEnvNamesAreKnown(t *testing.T) { runCheck(t, "env names") }

// The gateway and the order worker get the variables they need (Kafka, Redis,
// DSN; the gateway its JWT secret and admin token), the worker not the
// gateway's secrets, in compose and in Kubernetes.
func TestRequiredEnvPerService(t *testing.T) { runCheck(t, "required env") }

// config.Load accepts each service's environment (compose, each Deployment)
// and the ConfigMap with the Secret's placeholders.
func TestConfigLoadAcceptsEnvironments(t *testing.T) { runCheck(t, "config loads") }

// The SECKILL_HTTP_ADDR port is the compose port/expose, the Dockerfile's
// EXPOSE, the containerPort, the probe ports, the Service targetPort, the
// scrape annotation and the Prometheus target.
func TestPortsAgree(t *testing.T) { runCheck(t, "ports") }

// Every image is pinned by a tag (or digest) and none is :latest.
func TestImagesArePinned(t *testing.T) { runCheck(t, "images pinned") }

// Every depends_on waits for service_healthy on a service with a
// healthcheck, and covers every backend the service's environment names.
func TestComposeDependsOnHealthyBackends(t *testing.T) { runCheck(t, "compose depends_on") }

// Redis 7.2, MySQL 8.4 and KRaft Kafka are configured the way the services'
// URL, DSN and brokers expect, with real healthchecks.
func TestComposeBackendsMatchTheServices(t *testing.T) { runCheck(t, "compose backends") }

// The seckill services' healthcheck is the image's binary with -healthcheck
// and stop_grace_period exceeds SECKILL_SHUTDOWN_TIMEOUT.
func TestComposeHealthchecksAndGracePeriods(t *testing.T) { runCheck(t, "compose healthchecks") }

// The Dockerfile is multi-stage, builds ./gateway/cmd/$SERVICE on golang:1.26
// with CGO_ENABLED=0, -trimpath, -ldflags='-s -w', and runs it from
// distroless static nonroot as USER nonroot.
func TestDockerfileBuildsStaticNonrootImage(t *testing.T) { runCheck(t, "dockerfile") }

// Every SERVICE built (compose, the Dockerfile default, the Deployments'
// images) is a main package under ./gateway/cmd.
func TestBuildTargetsExist(t *testing.T) { runCheck(t, "build targets") }

// .dockerignore keeps .git, data/ and bin/ out and go.work and the modules in.
func TestDockerignore(t *testing.T) { runCheck(t, "dockerignore") }

// Liveness probes /healthz, readiness /readyz, startup /healthz.
func TestK8sProbes(t *testing.T) { runCheck(t, "k8s probes") }

// Pods run nonroot with a read-only root filesystem and no capabilities,
// request resources, get a grace period longer than the drain, and carry the
// scrape annotations.
func TestK8sPodHardening(t *testing.T) { runCheck(t, "k8s pod hardening") }

// Selectors match pod labels; each Deployment has one PDB and one HPA; the
// order-worker HPA stops at SECKILL_KAFKA_PARTITIONS.
func TestK8sSelectorsPDBsAndHPAs(t *testing.T) { runCheck(t, "k8s selectors, PDBs, HPAs") }

// The Secret holds CHANGE_ME placeholders only; the ConfigMap holds no secret.
func TestK8sSecretHoldsPlaceholdersOnly(t *testing.T) { runCheck(t, "k8s secrets") }

// Everything is in the one Namespace and listed in kustomization.yaml.
func TestK8sNamespaceAndKustomization(t *testing.T) { runCheck(t, "k8s namespace and kustomization") }

// Prometheus' kubernetes_sd job keeps annotated pods and uses their port and
// path; static and DNS targets are compose services.
func TestPrometheusConfig(t *testing.T) { runCheck(t, "prometheus") }

// deploy/README.md documents the build, compose and kubectl commands.
func TestReadmeDocumentsCommands(t *testing.T) { runCheck(t, "readme") }
