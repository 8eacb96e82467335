package registry

import "fmt"

// Limits bound what clients may store, so that a client with a valid
// token (or a bug) cannot grow the registry, its Raft log and every
// subscriber's answers without end. Zero fields take the defaults below.
type Limits struct {
	// InstancesPerService bounds one service's instances.
	InstancesPerService int `json:"instances_per_service,omitempty"`
	// InstancesPerNamespace bounds the instances of all services of a
	// namespace together.
	InstancesPerNamespace int `json:"instances_per_namespace,omitempty"`
	// ServicesPerNamespace bounds the services of a namespace.
	ServicesPerNamespace int `json:"services_per_namespace,omitempty"`
	// MetadataEntries and MetadataBytes (keys and values together) bound
	// the metadata of one instance or service. They are checked before a
	// command is proposed, need no state, and so stay out of the log.
	MetadataEntries int `json:"-"`
	MetadataBytes   int `json:"-"`
}

// Default limits (registry.limits in the config).
const (
	DefaultInstancesPerService   = 10000
	DefaultInstancesPerNamespace = 100000
	DefaultServicesPerNamespace  = 10000
	DefaultMetadataEntries       = 64
	DefaultMetadataBytes         = 4096
)

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.InstancesPerService, DefaultInstancesPerService)
	def(&l.InstancesPerNamespace, DefaultInstancesPerNamespace)
	def(&l.ServicesPerNamespace, DefaultServicesPerNamespace)
	def(&l.MetadataEntries, DefaultMetadataEntries)
	def(&l.MetadataBytes, DefaultMetadataBytes)
	return l
}

// LimitError is a write refused by a limit; the HTTP API answers it 403.
type LimitError struct{ msg string }

func (e *LimitError) Error() string { return "registry limit: " + e.msg }

func limitErr(format string, args ...any) error {
	return &LimitError{fmt.Sprintf(format, args...)}
}

// checkMetadata applies the metadata limits to one instance's or
// service's metadata.
func (l *Limits) checkMetadata(what string, md map[string]string) error {
	if len(md) > l.MetadataEntries {
		return limitErr("%s has %d metadata entries, more than registry.limits.metadata_entries (%d)", what, len(md), l.MetadataEntries)
	}
	size := 0
	for k, v := range md {
		size += len(k) + len(v)
	}
	if size > l.MetadataBytes {
		return limitErr("%s has %d bytes of metadata, more than registry.limits.metadata_bytes (%d)", what, size, l.MetadataBytes)
	}
	return nil
}

// checkCommand applies the metadata limits to what c would store. The
// leader calls it before proposing c.
func (l *Limits) checkCommand(c *Command) error {
	switch c.Op {
	case OpBatch:
		for i := range c.Batch {
			if err := l.checkCommand(&c.Batch[i]); err != nil {
				return err
			}
		}
	case OpRegister:
		for i := range c.Instances {
			if err := l.checkMetadata("instance "+c.Instances[i].ID(), c.Instances[i].Metadata); err != nil {
				return err
			}
		}
	case OpPatch:
		if c.Patch != nil {
			return l.checkMetadata("the patch", c.Patch.Metadata)
		}
	case OpPutService:
		if c.Service != nil {
			return l.checkMetadata("service "+c.Service.Key.String(), c.Service.Metadata)
		}
	}
	return nil
}

// stamp gives a command that can add instances or services the leader's
// count limits, which every node then applies alike: the limits travel in
// the log entry, so nodes configured differently (or a log replayed after
// the limits changed) still agree on what the entry did.
func (l *Limits) stamp(c *Command) {
	switch c.Op {
	case OpRegister, OpPutService:
		c.Limits = &Limits{
			InstancesPerService:   l.InstancesPerService,
			InstancesPerNamespace: l.InstancesPerNamespace,
			ServicesPerNamespace:  l.ServicesPerNamespace,
		}
	}
}
