// Package e2e holds end-to-end tests of evproxy with real WASM plugins: the
// example plugins (built by `make plugins`) and the runtime's fault-injection
// fixtures, loaded into a running evproxy in front of kfake over TCP, with
// franz-go and kcat producers and the upstream read back directly.
package e2e
