package spike

import (
	"fmt"

	"github.com/flashsale/seckill/loadtest/chaos"
	"github.com/flashsale/seckill/loadtest/cluster"
)

// metricsProcesses are the cluster's processes whose /metrics the spike
// reads behind nginx: the counters of the buy path (gateways) and of the
// writes (workers), and the queue's age (both). The notifier adds nothing
// the report shows.
func metricsProcesses() []string {
	return []string{cluster.Gateway1, cluster.Gateway2, cluster.Worker1, cluster.Worker2}
}

// ForCluster points o at the cluster in a box: its front door, the
// gateways' secrets, MariaDB (directly, for the audit), and the /metrics
// of each gateway and worker. A URL already set must be the cluster's:
// faults injected into one system while another is measured would prove
// nothing.
func ForCluster(o *Options, c *cluster.Cluster) error {
	if o.URL != "" && o.URL != c.URL() {
		return fmt.Errorf("--url %s is not the front door of the cluster in %s (%s)", o.URL, c.Dir(), c.URL())
	}
	o.URL = c.URL()
	if o.AdminToken == "" {
		o.AdminToken = c.AdminToken()
	}
	if o.JWTSecret == "" {
		o.JWTSecret = c.JWTSecret()
	}
	if o.DBDSN == "" {
		o.DBDSN = c.DBDSN()
	}
	if len(o.MetricsURLs) == 0 {
		for _, n := range metricsProcesses() {
			o.MetricsURLs = append(o.MetricsURLs, c.MetricsURL(n))
		}
	}
	if c.Settings().Demo && o.BuyToken == "" {
		o.BuyToken = BuyTokenOff // demo mode asks for no buy tokens
	}
	return nil
}

// ChaosOn plays schedule s on the cluster: it is validated against the
// cluster's processes first, so a fault the cluster cannot take is an
// error before anything runs.
func ChaosOn(c *cluster.Cluster, s chaos.Schedule) (*Chaos, error) {
	t := chaos.NewClusterTarget(c)
	if err := s.Validate(t.Topology()); err != nil {
		return nil, err
	}
	return &Chaos{Schedule: s, Target: t, Heal: t.Heal, PrometheusURL: c.PrometheusURL(), Streams: c.StreamReplicas}, nil
}
