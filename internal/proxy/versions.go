package proxy

// apiRange is the versions of one API evproxy implements.
type apiRange struct {
	key      int16
	min, max int16
}

// supported lists every API and version range evproxy implements, and so
// advertises in ApiVersions. Nothing else is advertised.
var supported = []apiRange{
	{key: 0, min: 0, max: 12}, // Produce (00_produce.go)
	{key: 1, min: 4, max: 12}, // Fetch (01_fetch.go)
	{key: 2, min: 1, max: 8},  // ListOffsets (02_list_offsets.go)
	{key: 3, min: 0, max: 13}, // Metadata (03_metadata.go)
	{key: 10, min: 0, max: 3}, // FindCoordinator (10_find_coordinator.go)
	{key: 18, min: 0, max: 4}, // ApiVersions (18_api_versions.go)
	{key: 22, min: 0, max: 4}, // InitProducerId (22_init_producer_id.go)
}

// lookupAPI returns the supported range of key.
func lookupAPI(key int16) (apiRange, bool) {
	for _, r := range supported {
		if r.key == key {
			return r, true
		}
	}
	return apiRange{}, false
}
