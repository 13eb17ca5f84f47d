package registry_test

import (
	"fmt"

	"github.com/eddy-streams/eddy/registry"
)

// Evolving a schema under the default BACKWARD mode: adding a field with a
// default is accepted, adding one without a default is not, because the new
// schema could not read records written before the field existed.
func ExampleCheck() {
	v1 := `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"}]}`
	withDefault := `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"},
		{"name":"referrer","type":"string","default":""}]}`
	withoutDefault := `{"type":"record","name":"PageView","fields":[
		{"name":"user","type":"string"},
		{"name":"referrer","type":"string"}]}`

	mode, err := registry.ParseCompatibility("BACKWARD")
	if err != nil {
		panic(err)
	}
	msgs, err := registry.Check(mode, withDefault, []string{v1})
	fmt.Println("with default:", len(msgs) == 0, err)

	msgs, err = registry.Check(mode, withoutDefault, []string{v1})
	fmt.Println("without default:", len(msgs) == 0, err)
	fmt.Println(msgs[0])

	msgs, err = registry.Check(registry.Forward, withoutDefault, []string{v1})
	fmt.Println("without default, FORWARD:", len(msgs) == 0, err)
	// Output:
	// with default: true <nil>
	// without default: false <nil>
	// {description:'the new schema cannot read data written with the old schema: reader field referrer is missing in writer schema and has no default'}
	// without default, FORWARD: true <nil>
}
