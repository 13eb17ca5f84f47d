package avro

import "net/http"

// FakeRegistryHandlerForTest exposes the test fake registry's HTTP handler
// to the package's external example tests. It exists only in tests.
func FakeRegistryHandlerForTest() http.Handler { return newFakeRegistry().handler() }
