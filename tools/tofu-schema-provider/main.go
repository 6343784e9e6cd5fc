// Command terraform-provider-confluent (schema replay) serves the schema of the real
// confluentinc/confluent provider, recorded with `tofu providers schema -json`, so that
// `tofu validate` and `tofu test` with `mock_provider "confluent"` can check terraform/
// where the real provider cannot be installed (it is not served by any package registry the
// project's machines reach; see terraform/README.md, "Checked by OpenTofu").
//
// It answers the schema, metadata, validation and state-upgrade calls and nothing else:
// every call that would create, read or change a real resource fails with an error that
// says so, so a configuration run against it without `mock_provider` cannot look like it
// worked. Validation accepts any configuration that matches the schema (OpenTofu checks
// types, required and conflicting-block rules itself); the real provider's value
// validators (enumerations, formats) do not run here.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tfprotov5/tf5server"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The recorded schema: the provider's entry of `tofu providers schema -json`, trimmed by
// terraform/tests/record-provider-schema to the resource and data source types
// terraform/ uses.
//
//go:embed schema.json
var recordedSchema []byte

const providerAddress = "registry.opentofu.org/confluentinc/confluent"

type jsonSchema struct {
	Version int64     `json:"version"`
	Block   jsonBlock `json:"block"`
}

type jsonBlock struct {
	Attributes map[string]jsonAttribute `json:"attributes"`
	BlockTypes map[string]jsonBlockType `json:"block_types"`
}

type jsonAttribute struct {
	Type       json.RawMessage `json:"type"`
	Required   bool            `json:"required"`
	Optional   bool            `json:"optional"`
	Computed   bool            `json:"computed"`
	Sensitive  bool            `json:"sensitive"`
	Deprecated bool            `json:"deprecated"`
}

type jsonBlockType struct {
	NestingMode string    `json:"nesting_mode"`
	Block       jsonBlock `json:"block"`
	MinItems    int64     `json:"min_items"`
	MaxItems    int64     `json:"max_items"`
}

type jsonProviderSchema struct {
	Provider          jsonSchema            `json:"provider"`
	ResourceSchemas   map[string]jsonSchema `json:"resource_schemas"`
	DataSourceSchemas map[string]jsonSchema `json:"data_source_schemas"`
}

type jsonRecording struct {
	ProviderVersion string             `json:"provider_version"`
	Schema          jsonProviderSchema `json:"schema"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func convertBlock(path string, b jsonBlock) (*tfprotov5.SchemaBlock, error) {
	out := &tfprotov5.SchemaBlock{}
	for _, name := range sortedKeys(b.Attributes) {
		a := b.Attributes[name]
		typ, err := tftypes.ParseJSONType(a.Type) //nolint:staticcheck // the schema JSON's own type syntax
		if err != nil {
			return nil, fmt.Errorf("%s.%s: type %s: %w", path, name, a.Type, err)
		}
		out.Attributes = append(out.Attributes, &tfprotov5.SchemaAttribute{
			Name:       name,
			Type:       typ,
			Required:   a.Required,
			Optional:   a.Optional,
			Computed:   a.Computed,
			Sensitive:  a.Sensitive,
			Deprecated: a.Deprecated,
		})
	}
	for _, name := range sortedKeys(b.BlockTypes) {
		bt := b.BlockTypes[name]
		nested, err := convertBlock(path+"."+name, bt.Block)
		if err != nil {
			return nil, err
		}
		var mode tfprotov5.SchemaNestedBlockNestingMode
		switch bt.NestingMode {
		case "single":
			mode = tfprotov5.SchemaNestedBlockNestingModeSingle
		case "list":
			mode = tfprotov5.SchemaNestedBlockNestingModeList
		case "set":
			mode = tfprotov5.SchemaNestedBlockNestingModeSet
		case "map":
			mode = tfprotov5.SchemaNestedBlockNestingModeMap
		case "group":
			mode = tfprotov5.SchemaNestedBlockNestingModeGroup
		default:
			return nil, fmt.Errorf("%s.%s: unknown nesting mode %q", path, name, bt.NestingMode)
		}
		out.BlockTypes = append(out.BlockTypes, &tfprotov5.SchemaNestedBlock{
			TypeName: name,
			Block:    nested,
			Nesting:  mode,
			MinItems: bt.MinItems,
			MaxItems: bt.MaxItems,
		})
	}
	return out, nil
}

func convertSchema(path string, s jsonSchema) (*tfprotov5.Schema, error) {
	block, err := convertBlock(path, s.Block)
	if err != nil {
		return nil, err
	}
	return &tfprotov5.Schema{Version: s.Version, Block: block}, nil
}

type server struct {
	provider    *tfprotov5.Schema
	resources   map[string]*tfprotov5.Schema
	dataSources map[string]*tfprotov5.Schema
}

func load() (*server, error) {
	var rec jsonRecording
	if err := json.Unmarshal(recordedSchema, &rec); err != nil {
		return nil, fmt.Errorf("recorded schema: %w", err)
	}
	s := &server{resources: map[string]*tfprotov5.Schema{}, dataSources: map[string]*tfprotov5.Schema{}}
	var err error
	if s.provider, err = convertSchema("provider", rec.Schema.Provider); err != nil {
		return nil, err
	}
	for name, js := range rec.Schema.ResourceSchemas {
		if s.resources[name], err = convertSchema(name, js); err != nil {
			return nil, err
		}
	}
	for name, js := range rec.Schema.DataSourceSchemas {
		if s.dataSources[name], err = convertSchema("data."+name, js); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func notReal(what string) []*tfprotov5.Diagnostic {
	return []*tfprotov5.Diagnostic{{
		Severity: tfprotov5.DiagnosticSeverityError,
		Summary:  "schema replay of confluentinc/confluent cannot " + what,
		Detail: "This provider only replays the recorded schema of confluentinc/confluent for " +
			"`tofu validate` and `tofu test` with `mock_provider \"confluent\"`. Install the real " +
			"provider from the registry to plan or apply against Confluent Cloud.",
	}}
}

func (s *server) GetMetadata(context.Context, *tfprotov5.GetMetadataRequest) (*tfprotov5.GetMetadataResponse, error) {
	resp := &tfprotov5.GetMetadataResponse{ServerCapabilities: &tfprotov5.ServerCapabilities{}}
	for _, name := range sortedKeys(s.resources) {
		resp.Resources = append(resp.Resources, tfprotov5.ResourceMetadata{TypeName: name})
	}
	for _, name := range sortedKeys(s.dataSources) {
		resp.DataSources = append(resp.DataSources, tfprotov5.DataSourceMetadata{TypeName: name})
	}
	return resp, nil
}

func (s *server) GetProviderSchema(context.Context, *tfprotov5.GetProviderSchemaRequest) (*tfprotov5.GetProviderSchemaResponse, error) {
	return &tfprotov5.GetProviderSchemaResponse{
		ServerCapabilities: &tfprotov5.ServerCapabilities{},
		Provider:           s.provider,
		ResourceSchemas:    s.resources,
		DataSourceSchemas:  s.dataSources,
		Functions:          map[string]*tfprotov5.Function{},
	}, nil
}

func (s *server) GetResourceIdentitySchemas(context.Context, *tfprotov5.GetResourceIdentitySchemasRequest) (*tfprotov5.GetResourceIdentitySchemasResponse, error) {
	return &tfprotov5.GetResourceIdentitySchemasResponse{IdentitySchemas: map[string]*tfprotov5.ResourceIdentitySchema{}}, nil
}

func (s *server) PrepareProviderConfig(_ context.Context, req *tfprotov5.PrepareProviderConfigRequest) (*tfprotov5.PrepareProviderConfigResponse, error) {
	return &tfprotov5.PrepareProviderConfigResponse{PreparedConfig: req.Config}, nil
}

func (s *server) ConfigureProvider(context.Context, *tfprotov5.ConfigureProviderRequest) (*tfprotov5.ConfigureProviderResponse, error) {
	return &tfprotov5.ConfigureProviderResponse{Diagnostics: notReal("connect to Confluent Cloud")}, nil
}

func (s *server) StopProvider(context.Context, *tfprotov5.StopProviderRequest) (*tfprotov5.StopProviderResponse, error) {
	return &tfprotov5.StopProviderResponse{}, nil
}

func (s *server) ValidateResourceTypeConfig(context.Context, *tfprotov5.ValidateResourceTypeConfigRequest) (*tfprotov5.ValidateResourceTypeConfigResponse, error) {
	return &tfprotov5.ValidateResourceTypeConfigResponse{}, nil
}

// UpgradeResourceState re-reads state written by the same schema version unchanged (tofu test
// keeps the mocked state of one run for the next).
func (s *server) UpgradeResourceState(_ context.Context, req *tfprotov5.UpgradeResourceStateRequest) (*tfprotov5.UpgradeResourceStateResponse, error) {
	schema, ok := s.resources[req.TypeName]
	if !ok {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: notReal("upgrade unknown resource type " + req.TypeName)}, nil
	}
	typ := schema.ValueType()
	val, err := req.RawState.Unmarshal(typ)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", req.TypeName, err)
	}
	dv, err := tfprotov5.NewDynamicValue(typ, val)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", req.TypeName, err)
	}
	return &tfprotov5.UpgradeResourceStateResponse{UpgradedState: &dv}, nil
}

func (s *server) ReadResource(context.Context, *tfprotov5.ReadResourceRequest) (*tfprotov5.ReadResourceResponse, error) {
	return &tfprotov5.ReadResourceResponse{Diagnostics: notReal("read resources")}, nil
}

func (s *server) PlanResourceChange(context.Context, *tfprotov5.PlanResourceChangeRequest) (*tfprotov5.PlanResourceChangeResponse, error) {
	return &tfprotov5.PlanResourceChangeResponse{Diagnostics: notReal("plan resources")}, nil
}

func (s *server) ApplyResourceChange(context.Context, *tfprotov5.ApplyResourceChangeRequest) (*tfprotov5.ApplyResourceChangeResponse, error) {
	return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: notReal("apply resources")}, nil
}

func (s *server) ImportResourceState(context.Context, *tfprotov5.ImportResourceStateRequest) (*tfprotov5.ImportResourceStateResponse, error) {
	return &tfprotov5.ImportResourceStateResponse{Diagnostics: notReal("import resources")}, nil
}

func (s *server) MoveResourceState(context.Context, *tfprotov5.MoveResourceStateRequest) (*tfprotov5.MoveResourceStateResponse, error) {
	return &tfprotov5.MoveResourceStateResponse{Diagnostics: notReal("move resource state")}, nil
}

func (s *server) UpgradeResourceIdentity(context.Context, *tfprotov5.UpgradeResourceIdentityRequest) (*tfprotov5.UpgradeResourceIdentityResponse, error) {
	return &tfprotov5.UpgradeResourceIdentityResponse{Diagnostics: notReal("upgrade resource identities")}, nil
}

func (s *server) GenerateResourceConfig(context.Context, *tfprotov5.GenerateResourceConfigRequest) (*tfprotov5.GenerateResourceConfigResponse, error) {
	return &tfprotov5.GenerateResourceConfigResponse{Diagnostics: notReal("generate configuration")}, nil
}

func (s *server) ValidateDataSourceConfig(context.Context, *tfprotov5.ValidateDataSourceConfigRequest) (*tfprotov5.ValidateDataSourceConfigResponse, error) {
	return &tfprotov5.ValidateDataSourceConfigResponse{}, nil
}

func (s *server) ReadDataSource(context.Context, *tfprotov5.ReadDataSourceRequest) (*tfprotov5.ReadDataSourceResponse, error) {
	return &tfprotov5.ReadDataSourceResponse{Diagnostics: notReal("read data sources")}, nil
}

func (s *server) GetFunctions(context.Context, *tfprotov5.GetFunctionsRequest) (*tfprotov5.GetFunctionsResponse, error) {
	return &tfprotov5.GetFunctionsResponse{Functions: map[string]*tfprotov5.Function{}}, nil
}

func (s *server) CallFunction(context.Context, *tfprotov5.CallFunctionRequest) (*tfprotov5.CallFunctionResponse, error) {
	return &tfprotov5.CallFunctionResponse{Error: &tfprotov5.FunctionError{Text: "the schema replay has no functions"}}, nil
}

func (s *server) ValidateEphemeralResourceConfig(context.Context, *tfprotov5.ValidateEphemeralResourceConfigRequest) (*tfprotov5.ValidateEphemeralResourceConfigResponse, error) {
	return &tfprotov5.ValidateEphemeralResourceConfigResponse{Diagnostics: notReal("validate ephemeral resources")}, nil
}

func (s *server) OpenEphemeralResource(context.Context, *tfprotov5.OpenEphemeralResourceRequest) (*tfprotov5.OpenEphemeralResourceResponse, error) {
	return &tfprotov5.OpenEphemeralResourceResponse{Diagnostics: notReal("open ephemeral resources")}, nil
}

func (s *server) RenewEphemeralResource(context.Context, *tfprotov5.RenewEphemeralResourceRequest) (*tfprotov5.RenewEphemeralResourceResponse, error) {
	return &tfprotov5.RenewEphemeralResourceResponse{Diagnostics: notReal("renew ephemeral resources")}, nil
}

func (s *server) CloseEphemeralResource(context.Context, *tfprotov5.CloseEphemeralResourceRequest) (*tfprotov5.CloseEphemeralResourceResponse, error) {
	return &tfprotov5.CloseEphemeralResourceResponse{Diagnostics: notReal("close ephemeral resources")}, nil
}

func main() {
	s, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "terraform-provider-confluent (schema replay):", err)
		os.Exit(1)
	}
	if err := tf5server.Serve(providerAddress, func() tfprotov5.ProviderServer { return s }); err != nil {
		fmt.Fprintln(os.Stderr, "terraform-provider-confluent (schema replay):", err)
		os.Exit(1)
	}
}
