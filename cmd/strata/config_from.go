package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/strata-lb/strata/internal/config"
	"github.com/strata-lb/strata/internal/configsource"
	"github.com/strata-lb/strata/internal/supervisor"
)

// configFrom is `strata run --config-from`: the config comes from a
// config service (strata's registry, or a Nacos server) and each new
// version is applied as a file reload is, all or nothing.
type configFrom struct {
	uri, tokenFile, cache string
}

func addConfigFromFlags(fs *flag.FlagSet) *configFrom {
	c := &configFrom{}
	fs.StringVar(&c.uri, "config-from", "", "take the config from a config service: registry://HOST:PORT/NAMESPACE/GROUP/DATAID (instead of -c)")
	fs.StringVar(&c.tokenFile, "config-token-file", "", "with --config-from: `file` holding the registry token (the namespace's, or the admin token)")
	fs.StringVar(&c.cache, "config-cache", "", "with --config-from: keep the last applied version in `file`, and start from it when the config service cannot be reached")
	return c
}

func (c *configFrom) run(fs *flag.FlagSet, stderr io.Writer) int {
	bad := ""
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "c" || f.Name == "watch" {
			bad = f.Name
		}
	})
	if bad != "" {
		fmt.Fprintf(stderr, "-%s and --config-from exclude each other: the config comes from one place\n", bad)
		return 2
	}
	token := ""
	if c.tokenFile != "" {
		t, err := config.ReadSecretFile(c.tokenFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		token = t
	}
	bootLog := newLogger(config.Log{}, stderr)
	src, err := configsource.Parse(c.uri, token, bootLog)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data, err := src.Fetch(ctx)
	if err != nil {
		cached, cerr := c.readCache()
		if cerr != nil {
			fmt.Fprintf(stderr, "taking the config: %v\n", err)
			return 1
		}
		bootLog.Warn("config source unreachable; starting from the cached copy", "err", err, "cache", c.cache)
		src.Seed(cached)
		data = cached
	}
	cfg, err := config.Parse(src.Name(), data)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	sup := supervisor.New(supervisor.Options{
		Source:  supervisor.Source{Name: src.Name(), Read: src.Current},
		Logger:  log,
		Version: version,
	})
	return serveThen(sup, log, func() {
		c.writeCache(log, src.Current())
		go src.Follow(ctx, func(data []byte) {
			sum := md5.Sum(data)
			log.Info("config source: a new version", "source", src.Name(), "md5", hex.EncodeToString(sum[:]))
			// Reload logs a refused version with its file:line error; the
			// running config keeps serving until a good one comes.
			if sup.Reload() == nil {
				c.writeCache(log, data)
			}
		})
	})
}

func (c *configFrom) readCache() ([]byte, error) {
	if c.cache == "" {
		return nil, fmt.Errorf("no --config-cache")
	}
	return os.ReadFile(c.cache)
}

// writeCache keeps data, a version that was applied, for a start while
// the config service is unreachable. It is written whole or not at all.
func (c *configFrom) writeCache(log interface{ Warn(string, ...any) }, data []byte) {
	if c.cache == "" {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.cache), ".strata-config-*")
	if err == nil {
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), c.cache)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		log.Warn("config source: writing the cache", "cache", c.cache, "err", err)
	}
}
