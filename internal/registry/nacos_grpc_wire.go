package registry

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The Nacos 2.x gRPC wire format. Every call carries one message, Payload:
//
//	message Metadata { string type = 3; string clientIp = 8; map<string,string> headers = 7; }
//	message Payload  { Metadata metadata = 2; google.protobuf.Any body = 3; }
//
// and the Any's value holds the request or response as JSON (its type_url
// is left empty by the clients and ignored here). The messages are encoded
// by hand with protowire instead of generated code: nothing is registered
// in the global protobuf registry, so a binary (or a test) that also links
// the official SDK, which registers its own Payload and Metadata, does not
// panic at init on a name clash.

// nacosPayload is a decoded Payload.
type nacosPayload struct {
	// Type names the request or response class ("InstanceRequest").
	Type string
	// ClientIP is what the client says its address is; auth never trusts
	// it (the transport's peer address is what counts).
	ClientIP string
	Headers  map[string]string
	// Body is the JSON of the request or response.
	Body []byte
}

// Field numbers of the messages above.
const (
	pbPayloadMetadata = 2
	pbPayloadBody     = 3
	pbMetaType        = 3
	pbMetaHeaders     = 7
	pbMetaClientIP    = 8
	pbAnyTypeURL      = 1
	pbAnyValue        = 2
	pbMapKey          = 1
	pbMapValue        = 2
)

// marshal encodes p as a Payload.
func (p *nacosPayload) marshal() []byte {
	var md []byte
	if p.Type != "" {
		md = protowire.AppendTag(md, pbMetaType, protowire.BytesType)
		md = protowire.AppendString(md, p.Type)
	}
	for k, v := range p.Headers {
		var e []byte
		e = protowire.AppendTag(e, pbMapKey, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, pbMapValue, protowire.BytesType)
		e = protowire.AppendString(e, v)
		md = protowire.AppendTag(md, pbMetaHeaders, protowire.BytesType)
		md = protowire.AppendBytes(md, e)
	}
	if p.ClientIP != "" {
		md = protowire.AppendTag(md, pbMetaClientIP, protowire.BytesType)
		md = protowire.AppendString(md, p.ClientIP)
	}
	var b []byte
	b = protowire.AppendTag(b, pbPayloadMetadata, protowire.BytesType)
	b = protowire.AppendBytes(b, md)
	var body []byte
	if len(p.Body) > 0 {
		body = protowire.AppendTag(body, pbAnyValue, protowire.BytesType)
		body = protowire.AppendBytes(body, p.Body)
	}
	b = protowire.AppendTag(b, pbPayloadBody, protowire.BytesType)
	b = protowire.AppendBytes(b, body)
	return b
}

// unmarshal decodes a Payload into p; unknown fields are skipped, as
// protobuf requires.
func (p *nacosPayload) unmarshal(b []byte) error {
	*p = nacosPayload{}
	return eachField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case pbPayloadMetadata:
			return eachField(v, func(num protowire.Number, v []byte) error {
				switch num {
				case pbMetaType:
					p.Type = string(v)
				case pbMetaClientIP:
					p.ClientIP = string(v)
				case pbMetaHeaders:
					var k, val string
					if err := eachField(v, func(num protowire.Number, v []byte) error {
						switch num {
						case pbMapKey:
							k = string(v)
						case pbMapValue:
							val = string(v)
						}
						return nil
					}); err != nil {
						return err
					}
					if p.Headers == nil {
						p.Headers = map[string]string{}
					}
					p.Headers[k] = val
				}
				return nil
			})
		case pbPayloadBody:
			return eachField(v, func(num protowire.Number, v []byte) error {
				if num == pbAnyValue {
					p.Body = append([]byte(nil), v...)
				}
				return nil
			})
		}
		return nil
	})
}

// eachField calls fn with the number and contents of every
// length-delimited field of the message b, skipping fields of other wire
// types (none of the messages above has any).
func eachField(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("nacos grpc: bad field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("nacos grpc: bad field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("nacos grpc: bad field %d: %w", num, protowire.ParseError(n))
		}
		if err := fn(num, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// nacosCodec is the server's gRPC codec: it encodes the one message type
// the Nacos services use. It is forced on the server (grpc.ForceServerCodec)
// and keeps the name "proto", which is what the clients' content type asks
// for.
type nacosCodec struct{}

func (nacosCodec) Marshal(v any) ([]byte, error) {
	p, ok := v.(*nacosPayload)
	if !ok {
		return nil, fmt.Errorf("nacos grpc: cannot encode %T", v)
	}
	return p.marshal(), nil
}

func (nacosCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*nacosPayload)
	if !ok {
		return fmt.Errorf("nacos grpc: cannot decode into %T", v)
	}
	return p.unmarshal(data)
}

func (nacosCodec) Name() string { return "proto" }
