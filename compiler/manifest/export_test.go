package manifest

// The fast paths and their references, for the tests that compare them.
var (
	ParseViaJSON = parseViaJSON
	YAMLReady    = yamlReady
	JSONValue    = jsonValue
	YAML11Clean  = yaml11Clean
)

func YAMLViaJSON(o *Object) ([]byte, error) { return o.yamlViaJSON() }
