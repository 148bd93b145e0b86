package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdStatus is what one etcd member says about itself: its /health
// verdict, active alarms, and database size against its quota. Error is
// set when the member could not be asked at all; fields that could not be
// read stay zero.
type EtcdStatus struct {
	Endpoint string `json:"endpoint"`
	// Healthy is /health's verdict; HealthReason what it said otherwise.
	Healthy      bool   `json:"healthy"`
	HealthReason string `json:"healthReason,omitempty"`
	Version      string `json:"version,omitempty"`
	// Alarms are the cluster's active alarms (NOSPACE, CORRUPT).
	Alarms []string `json:"alarms,omitempty"`
	// DBSize is the backend file's size, DBSizeInUse the part holding
	// live data (the rest is reclaimed by a defragmentation), Quota the
	// --quota-backend-bytes the member reports (0: not reported, etcd <
	// 3.6).
	DBSize      int64  `json:"dbSize,omitempty"`
	DBSizeInUse int64  `json:"dbSizeInUse,omitempty"`
	Quota       int64  `json:"quota,omitempty"`
	Error       string `json:"error,omitempty"`
}

// ReadEtcd asks one etcd member, at endpoint (http://host:port; https
// without client certificates is tried with the system roots), for its
// health, alarms and status. It never writes. Which member to ask is the
// caller's knowledge: kup knows the sandbox's; other control planes do not
// expose etcd to kup yet, and their callers report "unknown".
func ReadEtcd(ctx context.Context, endpoint string) *EtcdStatus {
	out := &EtcdStatus{Endpoint: endpoint}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		out.Error = fmt.Sprintf("etcd endpoint %q: want a URL such as http://127.0.0.1:2379", endpoint)
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	var problems []string
	if err := etcdHealth(ctx, endpoint, out); err != nil {
		problems = append(problems, err.Error())
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		out.Error = strings.Join(append(problems, fmt.Sprintf("connecting to etcd at %s: %v", endpoint, err)), "; ")
		return out
	}
	defer cli.Close()
	st, err := cli.Status(ctx, endpoint)
	if err != nil {
		problems = append(problems, fmt.Sprintf("etcd status at %s: %v", endpoint, err))
	} else {
		out.Version = st.Version
		out.DBSize, out.DBSizeInUse, out.Quota = st.DbSize, st.DbSizeInUse, st.DbSizeQuota
		for _, e := range st.Errors {
			out.Alarms = append(out.Alarms, "error: "+e)
		}
	}
	alarms, err := cli.AlarmList(ctx)
	if err != nil {
		problems = append(problems, fmt.Sprintf("etcd alarm list at %s: %v", endpoint, err))
	} else {
		for _, a := range alarms.Alarms {
			out.Alarms = append(out.Alarms, fmt.Sprintf("%s on member %x", a.Alarm, a.MemberID))
		}
	}
	if len(problems) > 0 {
		out.Error = strings.Join(problems, "; ")
	}
	return out
}

// etcdHealth reads /health, which etcd serves on its client URL:
// {"health":"true","reason":""}.
func etcdHealth(ctx context.Context, endpoint string, out *EtcdStatus) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("etcd /health at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return fmt.Errorf("etcd /health at %s: %w", endpoint, err)
	}
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("etcd /health at %s answered %s: %q", endpoint, resp.Status, body)
	}
	out.Healthy = h.Health == "true"
	out.HealthReason = h.Reason
	if !out.Healthy && out.HealthReason == "" {
		out.HealthReason = fmt.Sprintf("/health answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
