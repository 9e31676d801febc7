"""OpenAPI schemas of the query layer's Structs as closed objects (``additionalProperties:
false``): msgspec encodes a Struct's declared fields and nothing else, and saying so keeps the
``oneOf`` of a route's envelopes exclusive. Without it a ``bottom_examples`` answer (Neuroscope's
fields plus ``nonnegative``) would also match Neuroscope's envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar._openapi.schema_generation.plugins import StructSchemaPlugin

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
    from litestar.typing import FieldDefinition

QUERY_SCHEMAS = "dd_api.query.schemas"


class ClosedStructs(StructSchemaPlugin):
    """Litestar's Struct schema, closed for the Structs declared in ``dd_api.query.schemas``."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return (
            super().is_plugin_supported_field(field_definition)
            and getattr(field_definition.type_, "__module__", "") == QUERY_SCHEMAS
        )

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False  # the registered component itself
        return schema
