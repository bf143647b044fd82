package proxy

import "github.com/twmb/franz-go/pkg/kmsg"

// ApiVersions: v0-4
//
// Behavior:
// * Lists exactly the APIs and versions in supported (versions.go).
// * A request above our newest version is answered in v0 with
//   UNSUPPORTED_VERSION and the full list (KIP-511), so the client retries
//   with a version we speak.
// * Responses always use response header v0, as brokers do.

func (s *Server) apiVersions(version int16) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	for _, a := range supported {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.key, a.min, a.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}
