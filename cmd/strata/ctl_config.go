package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-lb/strata/internal/config"
)

const ctlConfigUsage = `usage: strata ctl config get|put|rm|history|rollback|ls [DATAID] [flags]
  get DATAID                   print the content (--json: with md5, type, version)
  put DATAID [--file F]        publish F, or stdin (--type, --cas-md5, --beta-ips, --tag)
  rm DATAID                    remove it (--beta: the beta only; --tag: that tag only)
  history DATAID               list the kept versions, newest first
  rollback DATAID --version N  publish version N again
  ls                           list the configurations of --namespace (and --group)
common flags: --server ADDR (default 127.0.0.1:8848) --namespace NS --group G --token-file F`

// ctlConfig is `strata ctl config`: the config service of a registry,
// through strata's own API (/v1/registry/configs), which any node serves
// (a follower forwards writes to the leader).
func ctlConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, ctlConfigUsage)
		return 2
	}
	op, args := args[0], args[1:]
	fs := flag.NewFlagSet("ctl config "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", config.DefaultRegistryListen, "HTTP `address` of a registry node")
	ns := fs.String("namespace", "public", "the `namespace` (Nacos tenant)")
	group := fs.String("group", "DEFAULT_GROUP", "the `group`")
	token := fs.String("token", "", "access `token` (visible in the process list; prefer --token-file)")
	tokenFile := fs.String("token-file", "", "`file` holding the namespace's or the admin token (not world-readable)")
	file := fs.String("file", "", "put: read the content from this `file` (default: stdin)")
	typ := fs.String("type", "", "put: the content's `type` (text, yaml, json, properties …)")
	cas := fs.String("cas-md5", "", "put: publish only if the current md5 is this `md5`")
	betaIPs := fs.String("beta-ips", "", "put: publish a beta served only to these comma-separated client `IPs`")
	tag := fs.String("tag", "", "put, rm, get: the `tag` variant")
	beta := fs.Bool("beta", false, "rm: remove the beta variant only")
	version := fs.Uint64("version", 0, "rollback: the history `version` to publish again")
	asJSON := fs.Bool("json", false, "get, history, ls: print JSON")
	// The dataId comes first (ctl config get app.yaml --group g) or after
	// the flags; flag stops at the first argument, so take it out.
	var dataID string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dataID, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if dataID == "" && fs.NArg() > 0 {
		dataID = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strata ctl config: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if dataID == "" && op != "ls" {
		fmt.Fprintln(stderr, ctlConfigUsage)
		return 2
	}
	if *tokenFile != "" {
		if *token != "" {
			fmt.Fprintln(stderr, "strata ctl config: set --token or --token-file, not both")
			return 2
		}
		t, err := config.ReadSecretFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "strata ctl config: --token-file: %v\n", err)
			return 2
		}
		*token = t
	}
	base := "http://" + *server + "/v1/registry/configs"
	path := base + "/" + url.PathEscape(*ns) + "/" + url.PathEscape(*group) + "/" + url.PathEscape(dataID)
	call := func(method, u string, body io.Reader) ([]byte, error) {
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			return nil, err
		}
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			var e struct{ Error string }
			if json.Unmarshal(out, &e) == nil && e.Error != "" {
				return nil, fmt.Errorf("%s: %s", resp.Status, e.Error)
			}
			return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(out))
		}
		return out, nil
	}
	type item struct {
		DataID       string `json:"data_id"`
		Content      string `json:"content"`
		MD5          string `json:"md5"`
		Type         string `json:"type"`
		Version      uint64 `json:"version"`
		LastModified int64  `json:"last_modified"`
	}
	var err error
	var out []byte
	switch op {
	case "get":
		q := url.Values{}
		if *tag != "" {
			q.Set("tag", *tag)
		}
		if out, err = call(http.MethodGet, path+"?"+q.Encode(), nil); err == nil {
			if *asJSON {
				stdout.Write(out)
				break
			}
			var it item
			if err = json.Unmarshal(out, &it); err == nil {
				io.WriteString(stdout, it.Content)
			}
		}
	case "put":
		var content []byte
		if *file != "" {
			content, err = os.ReadFile(*file)
		} else {
			content, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		}
		if err != nil {
			fmt.Fprintf(stderr, "strata ctl config put: reading the content: %v\n", err)
			return 1
		}
		q := url.Values{}
		for k, v := range map[string]string{"type": *typ, "cas_md5": *cas, "beta_ips": *betaIPs, "tag": *tag} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if out, err = call(http.MethodPut, path+"?"+q.Encode(), bytes.NewReader(content)); err == nil {
			var it item
			json.Unmarshal(out, &it)
			fmt.Fprintf(stdout, "published %s/%s/%s md5 %s version %d\n", *ns, *group, dataID, it.MD5, it.Version)
		}
	case "rm":
		q := url.Values{}
		if *tag != "" {
			q.Set("tag", *tag)
		}
		if *beta {
			q.Set("beta", "true")
		}
		if _, err = call(http.MethodDelete, path+"?"+q.Encode(), nil); err == nil {
			fmt.Fprintf(stdout, "removed %s/%s/%s\n", *ns, *group, dataID)
		}
	case "history":
		if out, err = call(http.MethodGet, path+"/history", nil); err == nil {
			if *asJSON {
				stdout.Write(out)
				break
			}
			var h struct {
				Versions []struct {
					Version      uint64 `json:"version"`
					Op           string `json:"op"`
					MD5          string `json:"md5"`
					LastModified int64  `json:"last_modified"`
					SrcIP        string `json:"src_ip"`
					Content      string `json:"content"`
				} `json:"versions"`
			}
			if err = json.Unmarshal(out, &h); err == nil {
				tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tOP\tMD5\tTIME\tFROM\tBYTES")
				for _, v := range h.Versions {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\n", v.Version, v.Op, v.MD5,
						time.UnixMilli(v.LastModified).UTC().Format(time.RFC3339), v.SrcIP, len(v.Content))
				}
				tw.Flush()
			}
		}
	case "rollback":
		if *version == 0 {
			fmt.Fprintln(stderr, "strata ctl config rollback: --version is required (see strata ctl config history)")
			return 2
		}
		if out, err = call(http.MethodPost, path+"/rollback?version="+strconv.FormatUint(*version, 10), nil); err == nil {
			var it item
			json.Unmarshal(out, &it)
			fmt.Fprintf(stdout, "rolled %s/%s/%s back to version %d: md5 %s version %d\n", *ns, *group, dataID, *version, it.MD5, it.Version)
		}
	case "ls":
		// Every group, unless --group names one.
		q := url.Values{"namespace": {*ns}}
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "group" {
				q.Set("group", *group)
			}
		})
		if out, err = call(http.MethodGet, base+"?"+q.Encode(), nil); err == nil {
			if *asJSON {
				stdout.Write(out)
				break
			}
			var l struct {
				Configs []struct {
					Group  string `json:"group"`
					DataID string `json:"data_id"`
				} `json:"configs"`
			}
			if err = json.Unmarshal(out, &l); err == nil {
				for _, c := range l.Configs {
					fmt.Fprintf(stdout, "%s/%s\n", c.Group, c.DataID)
				}
			}
		}
	default:
		fmt.Fprintf(stderr, "strata ctl config: unknown operation %q\n%s\n", op, ctlConfigUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "strata ctl config %s: %v\n", op, err)
		return 1
	}
	return 0
}
