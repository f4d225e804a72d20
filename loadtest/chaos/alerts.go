package chaos

import (
	"cmp"
	"context"
	"encoding/json"
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

// Alert is one alert, with one set of labels, that a Prometheus found
// firing in a window.
type Alert struct {
	Name     string            `json:"name"`
	Severity string            `json:"severity"`
	Labels   map[string]string `json:"labels,omitempty"` // without alertname, alertstate, severity
	// First and Last are the first and last evaluations that found it
	// firing.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// String is "Name (severity) label=value, ...".
func (a Alert) String() string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s)", a.Name, a.Severity)
	for i, k := range keys {
		sep := ", "
		if i == 0 {
			sep = " "
		}
		fmt.Fprintf(&b, "%s%s=%s", sep, k, a.Labels[k])
	}
	return b.String()
}

// FiredAlerts asks the Prometheus at promURL which alerts fired between
// from and to, in the order they first fired.
//
// It reads the raw samples of the ALERTS series in the window (an instant
// query of ALERTS{alertstate="firing"}[window] at to), so every rule
// evaluation counts, however short the alert. Plain HTTP and JSON: the
// load tester needs no Prometheus library for one query.
func FiredAlerts(ctx context.Context, client *http.Client, promURL string, from, to time.Time) ([]Alert, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("alerts: the window ends (%s) before it starts (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	base, err := url.Parse(promURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("alerts: Prometheus URL %q: want http://host:port", promURL)
	}
	u := base.JoinPath("/api/v1/query")
	u.RawQuery = url.Values{
		// One millisecond more takes a sample written exactly at from.
		"query": {fmt.Sprintf(`ALERTS{alertstate="firing"}[%dms]`, to.Sub(from).Milliseconds()+1)},
		"time":  {strconv.FormatFloat(float64(to.UnixMilli())/1000, 'f', 3, 64)},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("alerts: query %s: %w", base.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("alerts: read the answer of %s: %w", base.Redacted(), err)
	}
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
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
	if ans.Status != "success" || ans.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("alerts: %s answered %s (%s, %q): %s", base.Redacted(), resp.Status, ans.Status, ans.Data.ResultType, ans.Error)
	}
	var out []Alert
	for _, s := range ans.Data.Result {
		a := Alert{Name: s.Metric["alertname"], Severity: s.Metric["severity"], Labels: map[string]string{}}
		for k, v := range s.Metric {
			switch k {
			case "__name__", "alertname", "alertstate", "severity":
			default:
				a.Labels[k] = v
			}
		}
		for _, v := range s.Values {
			f, ok := v[0].(float64)
			if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("alerts: %s: a sample of %s has no timestamp", base.Redacted(), a.Name)
			}
			t := time.UnixMilli(int64(math.Round(f * 1000)))
			if a.First.IsZero() || t.Before(a.First) {
				a.First = t
			}
			if t.After(a.Last) {
				a.Last = t
			}
		}
		if !a.First.IsZero() {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Alert) int {
		return cmp.Or(a.First.Compare(b.First), cmp.Compare(a.Name, b.Name), cmp.Compare(a.String(), b.String()))
	})
	return out, nil
}
