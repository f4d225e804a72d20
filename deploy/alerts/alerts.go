// Package alerts tells which of seckill's alerts fired during a time
// window, read from a Prometheus that evaluates deploy/prometheus/alerts.yml:
// a chaos run lists them next to the faults it injected, so its report says
// whether an operator would have been told.
//
// The Prometheus it reads is one the caller starts (Debian's prometheus
// package, 2.42, loads the rules as they are) with RulesFile in its
// rule_files and the seckill processes as scrape targets, each labelled
// with its service (gateway, order-worker, notifier) as
// deploy/prometheus/prometheus.yml labels them. Scrape and evaluate every
// second or few: an alert whose condition lasts less than an evaluation
// interval is never seen.
package alerts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RulesFile is the rules file, relative to the repository's root.
const RulesFile = "deploy/prometheus/alerts.yml"

// DefaultTimeout bounds the query when Config.Client is nil.
const DefaultTimeout = 10 * time.Second

// Config says which Prometheus to ask.
type Config struct {
	// URL is Prometheus' base URL, such as http://127.0.0.1:9090.
	URL string
	// Client makes the request. Default: an http.Client with
	// DefaultTimeout.
	Client *http.Client
}

func (c Config) withDefaults() Config {
	if c.Client == nil {
		c.Client = &http.Client{Timeout: DefaultTimeout}
	}
	return c
}

// Firing is one alert, one set of labels, seen firing in the window.
type Firing struct {
	Name     string // alertname
	Severity string // critical, warning or info
	// Labels are the alert's other labels: what it fired for (instance,
	// topic, activity_id...), without alertname, alertstate and severity.
	Labels map[string]string
	// First and Last are the first and the last evaluation in the window
	// that found it firing.
	First, Last time.Time
}

// String is the alert as a report line: name, severity and labels.
func (f Firing) String() string {
	keys := make([]string, 0, len(f.Labels))
	for k := range f.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)", f.Name, f.Severity)
	for i, k := range keys {
		sep := " "
		if i > 0 {
			sep = ", "
		}
		fmt.Fprintf(&b, "%s%s=%s", sep, k, f.Labels[k])
	}
	return b.String()
}

// Fired returns the alerts that fired between from and to, in the order
// they first fired (then by name). It reads the raw samples of Prometheus'
// ALERTS series over the window, so every evaluation counts, however short
// the alert. An alert that was pending and never fired is not returned.
func Fired(ctx context.Context, cfg Config, from, to time.Time) ([]Firing, error) {
	cfg = cfg.withDefaults()
	if !to.After(from) {
		return nil, fmt.Errorf("alerts: the window ends (%s) before it starts (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	base, err := url.Parse(cfg.URL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("alerts: Prometheus URL %q: want http://host:port", cfg.URL)
	}
	// A range selector ending at `to` returns the samples after to-window;
	// one millisecond more takes a sample written exactly at `from`.
	window := to.Sub(from).Milliseconds() + 1
	q := url.Values{
		"query": {fmt.Sprintf(`ALERTS{alertstate="firing"}[%dms]`, window)},
		"time":  {strconv.FormatFloat(float64(to.UnixMilli())/1000, 'f', 3, 64)},
	}
	u := base.JoinPath("/api/v1/query")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alerts: query %s: %w", base.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("alerts: read the answer of %s: %w", base.Redacted(), err)
	}
	var ans struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("alerts: %s answered %s, not Prometheus' JSON: %w", base.Redacted(), resp.Status, err)
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("alerts: %s answered %s: %s: %s", base.Redacted(), resp.Status, ans.ErrorType, ans.Error)
	}
	if ans.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("alerts: %s answered a %q, want a matrix", base.Redacted(), ans.Data.ResultType)
	}
	out := make([]Firing, 0, len(ans.Data.Result))
	for _, s := range ans.Data.Result {
		if len(s.Values) == 0 {
			continue
		}
		f := Firing{Name: s.Metric["alertname"], Severity: s.Metric["severity"], Labels: map[string]string{}}
		for k, v := range s.Metric {
			switch k {
			case "__name__", "alertname", "alertstate", "severity":
			default:
				f.Labels[k] = v
			}
		}
		for i, v := range s.Values {
			t, err := sampleTime(v[0])
			if err != nil {
				return nil, fmt.Errorf("alerts: %s: sample %d of %s: %w", base.Redacted(), i, f.Name, err)
			}
			if f.First.IsZero() || t.Before(f.First) {
				f.First = t
			}
			if t.After(f.Last) {
				f.Last = t
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Firing) int {
		return cmp.Or(a.First.Compare(b.First), cmp.Compare(a.Name, b.Name), cmp.Compare(a.String(), b.String()))
	})
	return out, nil
}

// sampleTime reads the timestamp of a sample: seconds since the epoch, a
// JSON number with millisecond decimals.
func sampleTime(v any) (time.Time, error) {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, errors.New("the timestamp is not a number")
	}
	return time.UnixMilli(int64(math.Round(f * 1000))), nil
}
