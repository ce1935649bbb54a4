// Command genembed writes schema-embed.json and terraform-mapping-embed.json, the files the
// provider's main package embeds. It does what upstream's cmd/pulumi-resource-kubernetes/
// generate.go does (stamp the version into the schema, compact both JSON files), but reads the
// inputs from the provider module in the module cache and takes paths as flags.
//
// Usage: go run ./genembed -version 4.25.0 -src <provider module dir>/cmd/pulumi-resource-kubernetes -out .
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	version := flag.String("version", "", "provider version to stamp into the schema (no leading v)")
	src := flag.String("src", "", "directory holding upstream schema.json and terraform-mapping.json")
	out := flag.String("out", ".", "output directory")
	flag.Parse()
	if *version == "" || *src == "" {
		log.Fatal("genembed: -version and -src are required")
	}

	raw, err := os.ReadFile(filepath.Join(*src, "schema.json"))
	if err != nil {
		log.Fatal(err)
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		log.Fatalf("cannot deserialize schema: %v", err)
	}
	spec.Version = *version
	schemaOut, err := json.Marshal(spec)
	if err != nil {
		log.Fatalf("cannot reserialize schema: %v", err)
	}

	raw, err = os.ReadFile(filepath.Join(*src, "terraform-mapping.json"))
	if err != nil {
		log.Fatal(err)
	}
	var mapping any
	if err := json.Unmarshal(raw, &mapping); err != nil {
		log.Fatalf("cannot deserialize terraform mapping: %v", err)
	}
	mappingOut, err := json.Marshal(mapping)
	if err != nil {
		log.Fatalf("cannot reserialize terraform mapping: %v", err)
	}

	for name, data := range map[string][]byte{
		"schema-embed.json":            schemaOut,
		"terraform-mapping-embed.json": mappingOut,
	} {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
