package evp

// Plugin is what a plugin implements. The kit calls Init once per instance
// with the plugin's configuration, then Process once per batch. An instance
// is never called concurrently.
type Plugin interface {
	// Init receives the plugin's config from config.hcl as JSON ({} when
	// there is none; the slice is the plugin's to keep). A non-nil error
	// refuses to start the plugin; evproxy logs it.
	Init(config []byte) error
	// Process decides about every record of one batch: all records come
	// from one partition batch and have the event type eventType. out has
	// len(recs) entries, all Keep() on entry; set out[i] for recs[i]. recs
	// may be changed freely (see [Record] for how long its slices live).
	// A panic fails the whole batch: evproxy discards the instance and
	// isolates the records that cause it (docs/plugin-abi.md §5).
	Process(eventType string, recs []Record, out []Verdict)
}

var registered Plugin

// Register makes p the plugin of this module. Call it once, from main's
// init (or a package-level variable initializer), never from main(): a
// plugin is a WASI reactor and its main function never runs.
//
//	func init() { evp.Register(&myPlugin{}) }
func Register(p Plugin) {
	if registered != nil {
		panic("evp: Register called twice")
	}
	if p == nil {
		panic("evp: Register(nil)")
	}
	registered = p
}
