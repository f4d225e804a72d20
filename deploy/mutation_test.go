package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The files a copy of the repository needs for the checks.
var copiedFiles = []string{
	composeFile, dockerignoreFile, goWorkFile, dockerfilePath, prometheusFile, deployReadme,
	k8sDir + "/*.yaml", cmdDir + "/*/*.go", "notifier/cmd/*/*.go", "order/cmd/*/*.go",
}

func copyRepo(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, pattern := range copiedFiles {
		matches, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil || len(matches) == 0 {
			t.Fatalf("copy %s: nothing matched (%v)", pattern, err)
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(repoRoot, m)
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dst, rel)
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

// allFindings runs every check over the files under root, each finding once.
func allFindings(root string) []string {
	f := load(root)
	var out []string
	seen := map[string]bool{}
	for _, c := range allChecks {
		for _, x := range c.run(f) {
			if s := x.String(); !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// A mutation breaks one file in one way; want is a piece of the finding that
// must report it (file and field, or the bad value).
type mutation struct {
	name, file, old, new, want string
}

var mutations = []mutation{
	// docker-compose.yml
	{"compose not YAML", composeFile, "services:\n", "services:\n\t- [\n", "docker-compose.yml: docker compose would refuse it"},
	{"compose unknown key", composeFile, "    stop_grace_period: 45s\n    read_only: true\n    tmpfs:\n      - /tmp\n    restart: unless-stopped\n\n  order-worker:", "    stop_grace_periods: 45s\n    read_only: true\n    tmpfs:\n      - /tmp\n    restart: unless-stopped\n\n  order-worker:", "docker compose would refuse it"},
	{"compose misspelt variable", composeFile, `SECKILL_WORKER_BATCH: "100"`, `SECKILL_WORKER_BATCHES: "100"`, "services.order-worker.environment.SECKILL_WORKER_BATCHES: not a variable"},
	{"compose invalid value", composeFile, "SECKILL_LOG_LEVEL: info", "SECKILL_LOG_LEVEL: verbose", "config.Load refuses it: SECKILL_LOG_LEVEL"},
	{"compose gateway without admin token", composeFile, "      SECKILL_ADMIN_TOKEN: ${SECKILL_ADMIN_TOKEN:-compose-dev-admin-token-CHANGE_ME}\n", "", "services.gateway.environment: SECKILL_ADMIN_TOKEN is required"},
	{"compose embedded queue", composeFile, "SECKILL_MQ: kafka", "SECKILL_MQ: embedded", `SECKILL_MQ is "embedded"`},
	{"compose worker given admin token", composeFile, "      SECKILL_WORKER_BATCH: \"100\"\n", "      SECKILL_WORKER_BATCH: \"100\"\n      SECKILL_ADMIN_TOKEN: compose-dev-admin-token-CHANGE_ME\n", "SECKILL_ADMIN_TOKEN is given to seckill-order-worker"},
	{"compose latest image", composeFile, "image: redis:7.2.5", "image: redis:latest", `services.redis.image: image "redis:latest" uses the floating tag`},
	{"compose untagged image", composeFile, "image: mysql:8.4.3", "image: mysql", `services.mysql.image: image "mysql" has no tag`},
	{"compose wrong mysql version", composeFile, "image: mysql:8.4.3", "image: mysql:5.7.44", `services.mysql.image: is "mysql:5.7.44", want mysql:8.4*`},
	{"compose depends_on started", composeFile, "  mysql:\n    condition: service_healthy", "  mysql:\n    condition: service_started", "services.gateway.depends_on.mysql: condition is \"service_started\""},
	{"compose backend without healthcheck", composeFile, "    healthcheck:\n      test: [\"CMD\", \"redis-cli\", \"ping\"]\n      interval: 5s\n      timeout: 3s\n      retries: 10\n", "", "services.redis.healthcheck: missing"},
	{"compose DSN to unknown host", composeFile, "@tcp(mysql:3306)", "@tcp(mariadb:3306)", `environment.SECKILL_DB_DSN: points at host "mariadb", which is not a compose service`},
	{"compose DSN wrong database", composeFile, "@tcp(mysql:3306)/seckill?", "@tcp(mysql:3306)/shop?", `services.mysql.environment.MYSQL_DATABASE: is "seckill", but gateway's DSN uses database "shop"`},
	{"compose kafka not advertised", composeFile, "PLAINTEXT://kafka:9092,HOST", "PLAINTEXT://localhost:9092,HOST", "KAFKA_ADVERTISED_LISTENERS"},
	{"compose kafka not KRaft combined", composeFile, "KAFKA_PROCESS_ROLES: broker,controller", "KAFKA_PROCESS_ROLES: broker", "KAFKA_PROCESS_ROLES: is \"broker\""},
	{"compose port mapping", composeFile, `"8080:8080"`, `"8080:9000"`, "services.gateway.ports[0]: container port 9000, but SECKILL_HTTP_ADDR listens on 8080"},
	{"compose worker addr", composeFile, "SECKILL_HTTP_ADDR: :8081", "SECKILL_HTTP_ADDR: :8082", "services.order-worker.expose[0]: exposes 8081, but SECKILL_HTTP_ADDR listens on 8082"},
	{"compose unknown SERVICE", composeFile, "SERVICE: seckill-order-worker", "SERVICE: seckill-orders", `services.order-worker.build.args.SERVICE: "seckill-orders" is not a service`},
	{"compose wrong dockerfile", composeFile, "      dockerfile: deploy/docker/Dockerfile\n      args:\n        SERVICE: seckill-gateway", "      dockerfile: Dockerfile\n      args:\n        SERVICE: seckill-gateway", "services.gateway.build.dockerfile"},
	{"compose short grace", composeFile, "    stop_grace_period: 45s\n    read_only: true\n    tmpfs:\n      - /tmp\n    restart: unless-stopped\n\n  order-worker:", "    stop_grace_period: 20s\n    read_only: true\n    tmpfs:\n      - /tmp\n    restart: unless-stopped\n\n  order-worker:", "services.gateway.stop_grace_period: is 20s"},
	{"compose healthcheck binary", composeFile, "    depends_on: *backends\n    healthcheck:\n      test: [\"CMD\", \"/app\", \"-healthcheck\"]\n      interval: 10s\n      timeout: 3s\n      retries: 3\n      start_period: 60s\n    # Longer", "    depends_on: *backends\n    healthcheck:\n      test: [\"CMD\", \"/bin/app\", \"-healthcheck\"]\n      interval: 10s\n      timeout: 3s\n      retries: 3\n      start_period: 60s\n    # Longer", "services.gateway.healthcheck.test"},
	{"compose more workers than partitions", composeFile, "      replicas: 2", "      replicas: 13", "13 replicas but SECKILL_KAFKA_PARTITIONS is 12"},

	// Dockerfile and .dockerignore
	{"dockerfile single stage", dockerfilePath, "FROM gcr.io/distroless/static-debian12:nonroot", "", "1 stage(s)"},
	{"dockerfile not distroless", dockerfilePath, "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:bookworm-slim", `final stage is "debian:bookworm-slim"`},
	{"dockerfile root user", dockerfilePath, "USER 65532:65532", "USER root", `USER: is "root", want nonroot`},
	{"dockerfile cgo", dockerfilePath, "CGO_ENABLED=0 GOOS", "GOOS", "CGO_ENABLED=0 is not set"},
	{"dockerfile no trimpath", dockerfilePath, "go build -trimpath ", "go build ", "no -trimpath"},
	{"dockerfile no strip", dockerfilePath, "-ldflags='-s -w'", "-ldflags='-X main.v=1'", "no -ldflags='-s -w'"},
	{"dockerfile old go", dockerfilePath, "golang:1.26-bookworm", "golang:1.25-bookworm", `build stage is "golang:1.25-bookworm"`},
	{"dockerfile wrong package", dockerfilePath, "./gateway/cmd/$SERVICE", "./cmd/$SERVICE", "does not build ./gateway/cmd/$SERVICE"},
	{"dockerfile bad default", dockerfilePath, "ARG SERVICE=seckill\n# Set by BuildKit", "ARG SERVICE=seckill-all\n# Set by BuildKit", `default "seckill-all" is not one of`},
	{"dockerfile binary elsewhere", dockerfilePath, "COPY --from=build /out/app /app", "COPY --from=build /out/app /usr/bin/app", "no COPY --from=build /out/app /app"},
	{"dockerfile shell entrypoint", dockerfilePath, `ENTRYPOINT ["/app"]`, `ENTRYPOINT /app`, "ENTRYPOINT must be the exec (JSON) form"},
	{"dockerfile expose", dockerfilePath, "EXPOSE 8080 8081", "EXPOSE 8080", "EXPOSE: does not list 8081"},
	{"dockerignore keeps .git", dockerignoreFile, "\n.git\n", "\n", ".dockerignore: does not exclude .git/"},
	{"dockerignore drops a module", dockerignoreFile, "\ndata\n", "\ndata\ngateway\n", ".dockerignore: excludes gateway/go.mod"},

	// Kubernetes
	{"k8s unknown field", k8sDir + "/gateway-deployment.yaml", "readinessProbe:", "readinesProbe:", `gateway-deployment.yaml: document 0 (Deployment): does not decode into apps/v1/Deployment: error unmarshaling JSON: while decoding JSON: json: unknown field "readinesProbe"`},
	{"k8s unknown kind", k8sDir + "/gateway-pdb.yaml", "apiVersion: policy/v1", "apiVersion: policy/v1beta1", `apiVersion "policy/v1beta1" kind "PodDisruptionBudget" is not one the tests decode`},
	{"k8s misspelt ConfigMap key", k8sDir + "/configmap.yaml", "SECKILL_SOLDOUT_TTL:", "SECKILL_SOLD_OUT_TTL:", "ConfigMap seckill-config data.SECKILL_SOLD_OUT_TTL: not a variable"},
	{"k8s ConfigMap fails config.Load", k8sDir + "/configmap.yaml", "SECKILL_PUBLISH_TIMEOUT: 2s", "SECKILL_PUBLISH_TIMEOUT: 45s", "config.Load refuses the ConfigMap with the Secret's placeholders: SECKILL_RESERVATION_TIMEOUT"},
	{"k8s partitions below HPA", k8sDir + "/configmap.yaml", `SECKILL_KAFKA_PARTITIONS: "12"`, `SECKILL_KAFKA_PARTITIONS: "8"`, "its HPA allows 12 replicas but SECKILL_KAFKA_PARTITIONS is 8"},
	{"k8s secret in ConfigMap", k8sDir + "/configmap.yaml", "  SECKILL_DEMO: \"false\"\n", "  SECKILL_DEMO: \"false\"\n  SECKILL_JWT_SECRET: not-so-secret-after-all\n", "data.SECKILL_JWT_SECRET: is a secret"},
	{"k8s real secret", k8sDir + "/secret.yaml", "CHANGE_ME-admin-bearer-token", "9f2c1e7a5b3d4c6e8f0a", "Secret seckill-secrets stringData.SECKILL_ADMIN_TOKEN: is not a CHANGE_ME placeholder"},
	{"k8s missing secret key", k8sDir + "/order-worker-deployment.yaml", "key: SECKILL_DB_DSN", "key: SECKILL_DB_URL", "secretKeyRef seckill-secrets/SECKILL_DB_URL does not exist"},
	{"k8s worker without DSN", k8sDir + "/order-worker-deployment.yaml", "            - name: SECKILL_DB_DSN\n              valueFrom:\n                secretKeyRef:\n                  name: seckill-secrets\n                  key: SECKILL_DB_DSN\n", "", "SECKILL_DB_DSN is required by seckill-order-worker but not set"},
	{"k8s container port", k8sDir + "/gateway-deployment.yaml", "containerPort: 8080", "containerPort: 8090", "does not include 8080 (SECKILL_HTTP_ADDR)"},
	{"k8s worker addr", k8sDir + "/order-worker-deployment.yaml", `value: ":8081"`, `value: ":9000"`, "livenessProbe.httpGet.port: http resolves to 8081, but SECKILL_HTTP_ADDR listens on 9000"},
	{"k8s readiness path", k8sDir + "/gateway-deployment.yaml", "path: /readyz", "path: /ready", `readinessProbe.httpGet.path: is "/ready", want /readyz`},
	{"k8s liveness on readyz", k8sDir + "/order-worker-deployment.yaml", "          livenessProbe:\n            httpGet:\n              path: /healthz", "          livenessProbe:\n            httpGet:\n              path: /readyz", `livenessProbe.httpGet.path: is "/readyz", want /healthz`},
	{"k8s no readiness", k8sDir + "/order-worker-deployment.yaml", "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n            periodSeconds: 10\n            timeoutSeconds: 2\n            failureThreshold: 3\n", "", "readinessProbe: missing"},
	{"k8s writable root", k8sDir + "/gateway-deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "container gateway securityContext.readOnlyRootFilesystem: not true"},
	{"k8s root allowed", k8sDir + "/order-worker-deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "Deployment seckill-order-worker spec.template.spec.securityContext.runAsNonRoot: not true"},
	{"k8s short grace", k8sDir + "/gateway-deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 32", "terminationGracePeriodSeconds: is 32"},
	{"k8s no cpu request", k8sDir + "/order-worker-deployment.yaml", "            requests:\n              cpu: 250m\n", "            requests:\n", "resources.requests.cpu: not set"},
	{"k8s service links", k8sDir + "/gateway-deployment.yaml", "enableServiceLinks: false", "enableServiceLinks: true", "enableServiceLinks: not false"},
	{"k8s scrape port", k8sDir + "/order-worker-deployment.yaml", `prometheus.io/port: "8081"`, `prometheus.io/port: "9102"`, `annotations[prometheus.io/port]: is "9102"`},
	{"k8s latest image", k8sDir + "/gateway-deployment.yaml", "seckill-gateway:0.1.0", "seckill-gateway:latest", `container gateway image: image "ghcr.io/flashsale/seckill-gateway:latest" uses the floating tag`},
	{"k8s image of another service", k8sDir + "/gateway-deployment.yaml", "ghcr.io/flashsale/seckill-gateway:0.1.0", "ghcr.io/flashsale/seckill-order-worker:0.1.0", "want an image named seckill-gateway"},
	{"k8s service target port", k8sDir + "/gateway-service.yaml", "targetPort: http", "targetPort: 9090", "Service seckill-gateway spec.ports[0].targetPort: 9090 resolves to 9090"},
	{"k8s service selects nothing", k8sDir + "/order-worker-service.yaml", "    app.kubernetes.io/component: order-worker\n  ports:", "    app.kubernetes.io/component: worker\n  ports:", "Service seckill-order-worker spec.selector"},
	{"k8s selector misses pods", k8sDir + "/gateway-deployment.yaml", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: seckill\n      app.kubernetes.io/component: gateway\n", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: seckill\n      app.kubernetes.io/component: gateway-v2\n", "Deployment seckill-gateway spec.selector: does not match"},
	{"k8s PDB selects nothing", k8sDir + "/gateway-pdb.yaml", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: seckill\n      app.kubernetes.io/component: gateway\n", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: seckill\n      app.kubernetes.io/component: gatway\n", "Deployment seckill-gateway: no PodDisruptionBudget selects its pods"},
	{"k8s HPA target", k8sDir + "/gateway-hpa.yaml", "    kind: Deployment\n    name: seckill-gateway", "    kind: Deployment\n    name: seckill-gw", `spec.scaleTargetRef.name: no Deployment "seckill-gw"`},
	{"k8s HPA without cpu", k8sDir + "/gateway-hpa.yaml", "        name: cpu", "        name: memory", "HorizontalPodAutoscaler seckill-gateway spec.metrics: no cpu Resource metric"},
	{"k8s wrong namespace", k8sDir + "/order-worker-pdb.yaml", "namespace: seckill", "namespace: default", `PodDisruptionBudget seckill-order-worker metadata.namespace: is "default", want seckill`},
	{"kustomization misses a file", k8sDir + "/" + kustomizationFn, "  - gateway-pdb.yaml\n", "", "kustomization.yaml: resources: does not list gateway-pdb.yaml"},
	{"kustomization latest", k8sDir + "/" + kustomizationFn, "    newTag: 0.1.0\n  - name: ghcr.io/flashsale/seckill-order-worker", "    newTag: latest\n  - name: ghcr.io/flashsale/seckill-order-worker", `newTag "latest": pin a version`},

	// Prometheus and the README
	{"prometheus misspelt key", prometheusFile, "  scrape_interval: 15s", "  scrape_intervall: 15s", "deploy/prometheus/prometheus.yml: yaml: unmarshal errors"},
	{"prometheus gateway port", prometheusFile, `"gateway:8080"`, `"gateway:9100"`, "gateway:9100, but gateway listens on 8080"},
	{"prometheus worker name", prometheusFile, `names: ["order-worker"]`, `names: ["worker"]`, "no job scrapes compose service order-worker on port 8081"},
	{"prometheus keeps every pod", prometheusFile, "        action: keep", "        action: drop", "no keep of __meta_kubernetes_pod_annotation_prometheus_io_scrape"},
	{"prometheus port annotation ignored", prometheusFile, "[__meta_kubernetes_pod_ip, __meta_kubernetes_pod_annotation_prometheus_io_port]", "[__meta_kubernetes_pod_ip]", "__address__ does not take prometheus.io/port"},
	// The notifier
	{"dockerfile order worker not mapped", dockerfilePath, "pkg=./order/cmd/$SERVICE", "pkg=./gateway/cmd/$SERVICE", "does not build ./order/cmd/$SERVICE for SERVICE=seckill-order-worker"},
	{"dockerfile notifier not mapped", dockerfilePath, "pkg=./notifier/cmd/$SERVICE", "pkg=./gateway/cmd/$SERVICE", "does not build ./notifier/cmd/$SERVICE for SERVICE=seckill-notifier"},
	{"compose notifier without SMTP", composeFile, "      SECKILL_SMTP_URL: smtp://mailpit:1025\n", "", "SECKILL_SMTP_URL is required by seckill-notifier"},
	{"k8s notifier given redis", k8sDir + "/notifier-deployment.yaml", "            - name: SECKILL_SMTP_URL\n", "            - name: SECKILL_REDIS_URL\n              value: redis://redis:6379/0\n            - name: SECKILL_SMTP_URL\n", "SECKILL_REDIS_URL is given to seckill-notifier"},
	{"k8s smtp password in configmap", k8sDir + "/configmap.yaml", "  SECKILL_SMTP_STARTTLS: mandatory\n", "  SECKILL_SMTP_STARTTLS: mandatory\n  SECKILL_SMTP_PASSWORD: hunter2\n", "data.SECKILL_SMTP_PASSWORD: is a secret"},
	{"readme without kubectl", deployReadme, "kubectl apply -k deploy/k8s\n", "kubectl apply -f deploy/k8s\n", `deploy/README.md: does not mention "kubectl apply -k deploy/k8s"`},
}

// TestChecksCatchBrokenFiles copies the files, breaks one thing at a time,
// and expects a finding naming it: the checks above would fail on such a file.
func TestChecksCatchBrokenFiles(t *testing.T) {
	t.Run("unbroken copy", func(t *testing.T) {
		for _, f := range allFindings(copyRepo(t)) {
			t.Error(f)
		}
	})
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			root := copyRepo(t)
			path := filepath.Join(root, m.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), m.old); n != 1 {
				t.Fatalf("the mutation's text occurs %d times in %s, want once: update the table", n, m.file)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(b), m.old, m.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			got := allFindings(root)
			for _, f := range got {
				if strings.Contains(f, m.want) {
					return
				}
			}
			t.Errorf("no finding contains %q; got:\n  %s", m.want, strings.Join(got, "\n  "))
		})
	}
}
