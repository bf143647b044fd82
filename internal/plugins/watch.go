package plugins

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// debounce is how long Watch waits after the last change to a plugin's
// files before reloading it, so that a file written in several steps is
// loaded once, complete.
const debounce = 200 * time.Millisecond

// watchHooks let tests observe Watch without sleeping.
type watchHooks struct {
	watching func()                       // the watches are in place
	reloaded func(name string, err error) // a reload Watch started has finished
}

// Watch reloads a plugin when its .wasm file or one of its table files
// changes, 200 ms after the last change. It watches the files' directories
// (editors and deployment tools replace files by renaming, and Kubernetes
// swaps a "..data" symlink, which counts as a change to every watched file
// of that directory) and follows the configurations Reload installs. A
// failed reload keeps the running version and is logged with the plugin's
// logger; Watch's own problems go to zerolog.Ctx(ctx). Watch returns nil
// when ctx ends or the Set is closed, and an error only if it cannot start.
// Run one Watch per Set.
func (s *Set) Watch(ctx context.Context) error {
	log := zerolog.Ctx(ctx)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("plugins: watch: %w", err)
	}
	defer w.Close()

	dirs := map[string]bool{}     // directories being watched
	var files map[string][]string // watched file (cleaned absolute path) -> plugins
	resync := func() {
		files = s.watchedFiles()
		for path := range files {
			dir := filepath.Dir(path)
			if dirs[dir] {
				continue
			}
			if err := w.Add(dir); err != nil {
				log.Warn().Err(err).Str("dir", dir).Msg("plugins: cannot watch directory; its plugins reload only on SIGHUP")
				continue
			}
			dirs[dir] = true
		}
	}
	resync()
	if s.hooks.watching != nil {
		s.hooks.watching()
	}

	timer := time.NewTimer(debounce)
	timer.Stop()
	pending := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-s.changed:
			resync()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !ev.Has(fsnotify.Write | fsnotify.Create) {
				continue // removals and renames away keep the running version
			}
			path := cleanPath(ev.Name)
			names := files[path]
			if strings.HasPrefix(filepath.Base(path), "..") {
				dir := filepath.Dir(path)
				for f, ns := range files {
					if filepath.Dir(f) == dir {
						names = append(names, ns...)
					}
				}
			}
			for _, name := range names {
				pending[name] = true
			}
			if len(names) > 0 {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn().Err(err).Msg("plugins: file watch error")
		case <-timer.C:
			names := make([]string, 0, len(pending))
			for name := range pending {
				names = append(names, name)
			}
			clear(pending)
			slices.Sort(names)
			for _, name := range names {
				cfg, ok := s.config(name)
				if !ok {
					continue
				}
				err := s.Reload(ctx, []Config{cfg})
				if err != nil {
					cfg.Logger.Error().Err(err).Str("plugin", name).Msg("plugin changed on disk but did not load; the running version stays")
				}
				if s.hooks.reloaded != nil {
					s.hooks.reloaded(name, err)
				}
			}
		}
	}
}

// watchedFiles maps every plugin and table file of the current
// configurations to the plugins that use it.
func (s *Set) watchedFiles() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	files := map[string][]string{}
	for name, cfg := range s.cfgs {
		files[cleanPath(cfg.Path)] = append(files[cleanPath(cfg.Path)], name)
		for _, t := range cfg.Tables {
			files[cleanPath(t)] = append(files[cleanPath(t)], name)
		}
	}
	return files
}

func cleanPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}
