package kafka

// Headers the hub writes on the records it produces. Entity records carry
// their type, version and customer so consumers can route without decoding.
const (
	HeaderError          = "synchub.error"
	HeaderEntityType     = "synchub.entity_type"
	HeaderVersion        = "synchub.version"
	HeaderOrganizationID = "synchub.organization_id"
)
