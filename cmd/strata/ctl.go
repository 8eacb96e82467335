package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/l4"
)

func init() {
	addCommand(command{"ctl", "conns|services|persist|bgp|drain-node|undrain-node [--admin ADDR] [--token-file F] | config get|put|rm|history|rollback|ls", "show the l4 tables, as ipvsadm -Lnc and -Ln --stats do, and the BGP state; drain or undrain this l4 node; read and write the registry's config service", cmdCtl})
}

func cmdCtl(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: strata ctl conns|services|persist|bgp|drain-node|undrain-node [--admin ADDR] [--token-file F]\n       strata ctl config get|put|rm|history|rollback|ls ...")
		return 2
	}
	if args[0] == "config" {
		return ctlConfig(args[1:], stdout, stderr)
	}
	what := args[0]
	fs := flag.NewFlagSet("ctl "+what, flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminAddr := fs.String("admin", config.DefaultAdminListen, "admin listener `address`")
	token := fs.String("token", "", "bearer `token` for the admin API (visible in the process list; prefer --token-file)")
	tokenFile := fs.String("token-file", "", "`file` holding the bearer token for the admin API (not world-readable)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *tokenFile != "" {
		if *token != "" {
			fmt.Fprintln(stderr, "strata ctl: set --token or --token-file, not both")
			return 2
		}
		t, err := config.ReadSecretFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "strata ctl: --token-file: %v\n", err)
			return 2
		}
		*token = t
	}
	call := func(method, path string, v any) error {
		req, err := http.NewRequest(method, "http://"+*adminAddr+path, nil)
		if err != nil {
			return err
		}
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		cl := &http.Client{Timeout: 10 * time.Second}
		resp, err := cl.Do(req)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			var e struct{ Error string }
			if json.Unmarshal(body, &e) == nil && e.Error != "" {
				return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
			}
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
		}
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("decoding %s: %w", path, err)
		}
		return nil
	}
	get := func(path string, v any) error { return call(http.MethodGet, path, v) }
	var err error
	switch what {
	case "conns":
		var conns []l4.ConnStatus
		if err = get(l4.PathConns, &conns); err == nil {
			printConns(stdout, conns)
		}
	case "services":
		var svcs []l4.ServiceStatus
		if err = get(l4.PathServices, &svcs); err == nil {
			printServices(stdout, svcs)
		}
	case "persist":
		var ps []l4.PersistStatus
		if err = get(l4.PathPersistence, &ps); err == nil {
			printPersist(stdout, ps)
		}
	case "bgp":
		var st l4.BGPStatus
		if err = get(l4.PathBGP, &st); err == nil {
			printBGP(stdout, st, time.Now())
		}
	case "drain-node", "undrain-node":
		path := l4.PathDrain
		if what == "undrain-node" {
			path = l4.PathUndrain
		}
		var st l4.BGPStatus
		if err = call(http.MethodPost, path, &st); err == nil {
			if st.Drained {
				fmt.Fprintf(stdout, "drained: every VIP withdrawn (%d announced), still serving what arrives\n", len(st.Announced))
			} else {
				fmt.Fprintf(stdout, "undrained: %d of %d VIPs announced\n", len(st.Announced), len(st.VIPs))
			}
		}
	default:
		fmt.Fprintf(stderr, "strata ctl: unknown table %q (want conns, services, persist, bgp, drain-node or undrain-node)\n", what)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "strata ctl:", err)
		return 1
	}
	return 0
}

// mmss formats seconds as ipvsadm's expire column does.
func mmss(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func printConns(w io.Writer, conns []l4.ConnStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(w, "IPVS connection entries")
	fmt.Fprintln(tw, "pro\texpire\tstate\tsource\tvirtual\tdestination\tage\tbytes-in\tbytes-out")
	for _, c := range conns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", strings.ToUpper(c.Protocol), mmss(c.ExpiresSeconds), c.State,
			c.Client, c.VIP, c.Backend, mmss(c.AgeSeconds), c.BytesIn, c.BytesOut)
	}
	tw.Flush()
}

func printServices(w io.Writer, svcs []l4.ServiceStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "strata l4 virtual services")
	fmt.Fprintln(tw, "Prot LocalAddress:Port Scheduler Flags\t\t\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "  -> RemoteAddress:Port\tWeight\tActiveConn\tInActConn\tConns\tInPkts\tOutPkts\tInBytes\tOutBytes\tCPS\t")
	row := func(head string, weight string, st l4.Stats) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t\n", head, weight, st.ActiveConns, st.InactiveConns,
			st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes, st.CPS)
	}
	for _, s := range svcs {
		flags := ""
		if s.Forward != "" && s.Forward != "proxy" {
			flags += " " + s.Forward
		}
		if s.Persistent > 0 {
			flags += fmt.Sprintf(" persistent %.0f", s.Persistent)
		}
		// The fingerprint of the Maglev table: equal on every node that
		// sends each flow to the same backend.
		if s.Fingerprint != "" {
			flags += " fingerprint " + s.Fingerprint
		}
		row(fmt.Sprintf("%-4s %s %s%s", strings.ToUpper(s.Protocol), s.Listen, s.Scheduler, flags), "", s.Stats)
		for _, b := range s.Backends {
			name := b.Address
			if b.Status != "up" {
				name += " (" + b.Status + ")"
			}
			row("  -> "+name, fmt.Sprint(b.EffectiveWeight), b.Stats)
		}
	}
	tw.Flush()
}

func printPersist(w io.Writer, ps []l4.PersistStatus) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "service\tclient\tdestination\texpire")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Service, p.Client, p.Backend, mmss(p.ExpiresSeconds))
	}
	tw.Flush()
}

// printBGP shows the speaker as an operator checks it: who it is, whether
// it is drained, each session and what it announces.
func printBGP(w io.Writer, st l4.BGPStatus, now time.Time) {
	if !st.Enabled {
		fmt.Fprintln(w, "BGP is not configured on this node (no l4.bgp)")
		return
	}
	state := "no"
	if st.Drained {
		state = "yes"
		if st.DrainedAt != nil {
			state += fmt.Sprintf(" (since %s ago)", ago(now, *st.DrainedAt))
		}
	}
	if st.ShuttingDown {
		state += ", shutting down (lameduck)"
	}
	fmt.Fprintf(w, "BGP asn %d, router-id %s, drained: %s\n", st.ASN, st.RouterID, state)
	comms := "none"
	if len(st.Communities) > 0 {
		comms = strings.Join(st.Communities, " ")
	}
	fmt.Fprintf(w, "route attributes: med %d, as-path prepend %d, communities %s\n\n", st.MED, st.ASPathPrepend, comms)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "peer\tasn\tstate\tuptime\tflaps\tlast transition")
	for _, p := range st.Peers {
		up := "-"
		if p.State == "established" {
			up = (time.Duration(p.UptimeSeconds * float64(time.Second))).Round(time.Second).String()
		}
		last := "-"
		if t := p.LastTransition; t != nil {
			last = fmt.Sprintf("%s -> %s %s ago", t.From, t.To, ago(now, t.At))
			if t.Reason != "" {
				last += ": " + t.Reason
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", p.Address, p.ASN, p.State, up, p.Flaps, last)
	}
	tw.Flush()
	list := func(xs []string) string {
		if len(xs) == 0 {
			return "none"
		}
		return strings.Join(xs, " ")
	}
	fmt.Fprintf(w, "\nannounced: %s\n", list(st.Announced))
	fmt.Fprintf(w, "VIPs:      %s\n", list(st.VIPs))
	fmt.Fprintf(w, "on lo:     %s\n", list(st.OnLo))
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
