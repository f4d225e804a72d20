// Package deploy holds no code of its own: its tests parse the deployment
// files (docker-compose.yml, deploy/docker, deploy/k8s, deploy/prometheus) and
// check them against each other and against the gateway's configuration, so a
// typo in a manifest fails `make test` instead of a rollout.
package deploy
