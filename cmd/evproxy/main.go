// Command evproxy is a Kafka-protocol event broker proxy. See README.md.
//
//	evproxy run [-c config.hcl] [--log-format json|console] [--log-level LEVEL]
//	evproxy validate [-c config.hcl]
//	evproxy plugin test --plugin X.wasm [--config JSON] < events.jsonl
//	evproxy migrate [-c config.hcl]
//	evproxy outbox status [-c config.hcl] [--json]
//	evproxy dlq list [-c config.hcl] [--topic T] [--since TIME] [--until TIME] [--id N]... [--unpublished] [--limit N] [--json]
//	evproxy dlq show ID [-c config.hcl] [--json]
//	evproxy dlq replay [-c config.hcl] [--id N]... [--topic T] [--since TIME] [--until TIME] [--all] [--limit N] [--dry-run]
//	evproxy version
//
// migrate, outbox and dlq work on the outbox store of the configuration's
// outbox block (docs/outbox.md); their logic is in internal/app
// (admincmd.go). Exit codes: 0 success, 1 runtime error, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/evproxy/evproxy/internal/app"
	"github.com/evproxy/evproxy/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `evproxy: a Kafka-protocol event broker proxy

Usage:
  evproxy run [-c config.hcl] [--log-format json|console] [--log-level debug|info|warn|error]
  evproxy validate [-c config.hcl]
  evproxy plugin test --plugin X.wasm [--config JSON] [--timeout 1s] < events.jsonl
  evproxy migrate [-c config.hcl]
  evproxy outbox status [-c config.hcl] [--json]
  evproxy dlq list [-c config.hcl] [--topic T] [--since TIME] [--until TIME] [--id N]...
                   [--unpublished] [--limit N] [--json]
  evproxy dlq show ID [-c config.hcl] [--json]
  evproxy dlq replay [-c config.hcl] [--id N]... [--topic T] [--since TIME] [--until TIME]
                     [--all] [--limit N] [--dry-run]
  evproxy version

migrate applies the outbox store's schema migrations; outbox status shows
pending records per topic; dlq lists, shows and replays dead letters
(replay needs a selector, or --all). TIME is RFC 3339
(2026-11-29T10:00:00Z) or a duration ago (2h: two hours ago). With the
embedded store (sqlite:) stop evproxy first: one process at a time.
See docs/outbox.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "plugin":
		if len(args) < 2 || args[1] != "test" {
			fmt.Fprintf(stderr, "evproxy plugin: use `evproxy plugin test --plugin X.wasm [--config JSON] < events.jsonl`\n")
			return 2
		}
		return cmdPluginTest(args[2:], os.Stdin, stdout, stderr)
	case "migrate":
		return cmdMigrate(args[1:], stdout, stderr)
	case "outbox":
		if len(args) < 2 || args[1] != "status" {
			fmt.Fprintln(stderr, "evproxy outbox: use `evproxy outbox status [-c config.hcl] [--json]`")
			return 2
		}
		return cmdOutboxStatus(args[2:], stdout, stderr)
	case "dlq":
		return cmdDLQ(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "evproxy", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "evproxy: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// loadConfig reads the config file and prints its diagnostics on error.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		var de *config.DiagnosticsError
		if errors.As(err, &de) {
			_ = de.WriteDiagnostics(stderr, false)
		} else {
			fmt.Fprintf(stderr, "evproxy: %v\n", err)
		}
		return nil, false
	}
	return cfg, true
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "config.hcl", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	a, err := app.New(cfg, zerolog.Nop())
	if err == nil {
		err = app.ValidatePlugins(context.Background(), a.PluginConfigs())
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK (%d routes, %d plugins)\n", *path, len(cfg.Routes), len(cfg.Plugins))
	return 0
}

func cmdPluginTest(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugin test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plugin := fs.String("plugin", "", "plugin .wasm file (required)")
	cfg := fs.String("config", "{}", "plugin configuration as JSON")
	timeout := fs.Duration("timeout", time.Second, "per-call time limit; 0 disables")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *plugin == "" {
		fmt.Fprintln(stderr, "evproxy plugin test: --plugin is required")
		return 2
	}
	log, _ := app.NewLogger(stderr, "warn", "console")
	err := app.RunPluginTest(context.Background(), stdin, stdout, app.PluginTestOptions{Path: *plugin, Config: *cfg, Timeout: *timeout, Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "evproxy plugin test: %v\n", err)
		return 1
	}
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "config.hcl", "configuration file")
	logFormat := fs.String("log-format", "", "log format: json or console (overrides log.format)")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn or error (overrides log.level)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	if *logFormat != "" {
		cfg.Log.Format = *logFormat
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	log, err := app.NewLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		fmt.Fprintf(stderr, "evproxy: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, err := app.New(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	if err := a.Start(ctx); err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	log.Info().Str("version", buildVersion()).Str("config", *path).Msg("evproxy running")
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-hup:
			// Reload plugins; other changes need a restart.
			if newCfg, ok := loadConfig(*path, stderr); !ok {
				log.Error().Str("config", *path).Msg("SIGHUP: configuration invalid, keeping the running plugins")
			} else if err := a.Reload(ctx, newCfg); err != nil {
				log.Error().Err(err).Msg("SIGHUP: reload failed, keeping the running plugins")
			}
		}
	}
	stop()
	log.Info().Dur("timeout", cfg.Proxy.ShutdownTimeout).Msg("shutting down: finishing in-flight requests")
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.Proxy.ShutdownTimeout)
	defer cancel()
	if err := a.Stop(stopCtx); err != nil {
		log.Error().Err(err).Msg("shutdown incomplete")
		return 1
	}
	log.Info().Msg("stopped")
	return 0
}

// adminCommand runs an outbox admin command: it parses -c, --json (when
// withJSON) and the flags flags adds, checks the positional arguments with
// positional, loads the configuration and calls fn.
func adminCommand(name string, args []string, stdout, stderr io.Writer, withJSON bool,
	flags func(fs *flag.FlagSet), positional func(pos []string) error,
	fn func(ctx context.Context, c *app.AdminCmd) error) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "config.hcl", "configuration file")
	asJSON := new(bool)
	if withJSON {
		fs.BoolVar(asJSON, "json", false, "print JSON instead of text")
	}
	if flags != nil {
		flags(fs)
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if positional == nil {
		positional = func(pos []string) error {
			if len(pos) > 0 {
				return fmt.Errorf("unexpected argument %q", pos[0])
			}
			return nil
		}
	}
	if err := positional(pos); err != nil {
		fmt.Fprintf(stderr, "evproxy %s: %v\n", name, err)
		return 2
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c := &app.AdminCmd{Config: cfg, Path: *path, Out: stdout, Notes: stderr, JSON: *asJSON}
	if err := fn(ctx, c); err != nil {
		fmt.Fprintf(stderr, "evproxy %s: %v\n", name, err)
		var ue *app.UsageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// parseInterspersed parses flags that may follow positional arguments
// (`dlq show 7 --json`) and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func cmdMigrate(args []string, stdout, stderr io.Writer) int {
	return adminCommand("migrate", args, stdout, stderr, false, nil, nil,
		func(ctx context.Context, c *app.AdminCmd) error { return c.Migrate(ctx) })
}

func cmdOutboxStatus(args []string, stdout, stderr io.Writer) int {
	return adminCommand("outbox status", args, stdout, stderr, true, nil, nil,
		func(ctx context.Context, c *app.AdminCmd) error { return c.OutboxStatus(ctx) })
}

func cmdDLQ(args []string, stdout, stderr io.Writer) int {
	const use = "evproxy dlq: use `evproxy dlq list|show|replay` (see `evproxy help`)"
	if len(args) == 0 {
		fmt.Fprintln(stderr, use)
		return 2
	}
	var f app.DLQFilter
	switch sub, args := args[0], args[1:]; sub {
	case "list":
		return adminCommand("dlq list", args, stdout, stderr, true,
			func(fs *flag.FlagSet) {
				f.AddFlags(fs, time.Now, true)
				fs.IntVar(&f.Limit, "limit", 100, "show at most `N` dead letters; 0: no limit")
			}, nil,
			func(ctx context.Context, c *app.AdminCmd) error { return c.DLQList(ctx, f) })
	case "show":
		var id int64
		return adminCommand("dlq show", args, stdout, stderr, true, nil,
			func(pos []string) error {
				if len(pos) != 1 {
					return errors.New("give one dead letter id: `evproxy dlq show ID` (ids as `evproxy dlq list` prints them)")
				}
				var err error
				id, err = app.ParseID(pos[0])
				return err
			},
			func(ctx context.Context, c *app.AdminCmd) error { return c.DLQShow(ctx, id) })
	case "replay":
		var o app.ReplayOptions
		return adminCommand("dlq replay", args, stdout, stderr, false,
			func(fs *flag.FlagSet) {
				f.AddFlags(fs, time.Now, false)
				fs.IntVar(&f.Limit, "limit", 0, "replay at most `N` dead letters, lowest ids first; 0: no limit")
				fs.BoolVar(&o.All, "all", false, "replay every dead letter (needed when no selector is given)")
				fs.BoolVar(&o.DryRun, "dry-run", false, "print what would be replayed; change nothing")
			}, nil,
			func(ctx context.Context, c *app.AdminCmd) error { return c.DLQReplay(ctx, f, o) })
	default:
		fmt.Fprintf(stderr, "evproxy dlq: unknown command %q\n%s\n", sub, use)
		return 2
	}
}
