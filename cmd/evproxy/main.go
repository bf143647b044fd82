// Command evproxy is a Kafka-protocol event broker proxy. See README.md.
//
//	evproxy run [-c config.hcl] [--log-format json|console] [--log-level LEVEL]
//	evproxy validate [-c config.hcl]
//	evproxy version
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

	"github.com/evproxy/evproxy/internal/app"
	"github.com/evproxy/evproxy/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `evproxy: a Kafka-protocol event broker proxy

Usage:
  evproxy run [-c config.hcl] [--log-format json|console] [--log-level debug|info|warn|error]
  evproxy validate [-c config.hcl]
  evproxy version
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
	fmt.Fprintf(stdout, "%s: OK (%d routes)\n", *path, len(cfg.Routes))
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
	<-ctx.Done()
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
