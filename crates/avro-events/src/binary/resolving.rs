//! Resolving decodes read by the generated decoders themselves: a record written with another
//! version of the reader's schema is decoded field by field off the writer's bytes, as Java
//! Avro's `ResolvingDecoder` feeds a `SpecificDatumReader` in the writer's field order.
//!
//! The resolution plan (`crate::resolve`) is compiled once per (writer schema, reader type) as
//! before; what changes is how a body is read with it. Instead of rewriting the whole body into
//! the reader's encoding and decoding the result, a generated record decoder
//! ([`AvroDatum::decode_resolving`](crate::binary::AvroDatum::decode_resolving)) asks
//! [`Resolving::fields`] for its fields in the writer's order and decodes each where it lies:
//! - a field both schemas encode the same way: straight off the writer's bytes, by the field's
//!   own generated decoder (which checks what it reads, as on the same-schema path);
//! - a record field whose writer record differs: field by field again, one level down;
//! - a field that changed otherwise (a promotion, renumbered enum symbols or union branches, an
//!   array of changed records): that field alone is rewritten by the plan, then decoded;
//! - a field the writer lacks: decoded from its default, encoded once when the plan was
//!   compiled;
//! - a writer field the reader lacks: read past (and checked) by the plan.
//!
//! Fields land in the reader's slots by position, so a reordered record needs no buffering.
//! Allocation stays bounded as on the plan path: the generated decoders never reserve more
//! than the input can hold, and each rewritten field is at most `avro.max.allocation.bytes`.

use crate::{binary::DecodeError, resolve::FieldStep, resolve::Plan};

/// A compiled resolution, positioned at one value of the reader's type: what a generated
/// decoder follows to decode a value written with another schema
/// ([`AvroDatum::decode_resolving`](crate::binary::AvroDatum::decode_resolving)). The codec
/// makes these; generated code only reads them.
#[derive(Debug, Clone, Copy)]
pub struct Resolving<'p> {
    plan: &'p Plan,
    op: usize,
    limit: usize,
}

impl<'p> Resolving<'p> {
    /// The whole value of `plan`, rewritten parts at most `limit` bytes each.
    pub(crate) fn root(plan: &'p Plan, limit: usize) -> Self {
        Self {
            plan,
            op: plan.root(),
            limit,
        }
    }

    /// Whether this is a record's resolution, which a generated record decoder can follow
    /// field by field ([`Resolving::fields`]).
    pub(crate) fn is_record(&self) -> bool {
        self.plan.record_len(self.op).is_some()
    }

    /// Reads one value off the front of `input` and returns it rewritten into the reader's
    /// encoding (what types decoded whole do, e.g. enums).
    ///
    /// # Errors
    /// [`DecodeError::Unresolvable`] for a body that does not decode with the writer schema,
    /// a value the reader cannot take, or a result beyond the allocation bound.
    pub fn rewrite(&self, input: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::with_capacity(input.len().min(self.limit) + 32);
        self.plan
            .rewrite_value(self.op, input, &mut out, self.limit)
            .map_err(DecodeError::Unresolvable)?;
        Ok(out)
    }

    /// Reads one record off the front of `input`, field by field in the writer's order,
    /// calling `field(position, input, nested)` for each reader field: `position` is the
    /// field's index in the reader's schema, `input` holds the field's value in the reader's
    /// encoding at its front, and `nested` is `Some` for a record field that must itself be
    /// decoded with [`AvroDatum::decode_resolving`](crate::binary::AvroDatum::decode_resolving).
    /// Each reader field is called exactly once. (The codec hands a record's decoder only
    /// resolutions of records: a writer union around the record, say, is rewritten whole
    /// and decoded with [`AvroDatum::decode`](crate::binary::AvroDatum::decode) instead.)
    ///
    /// # Errors
    /// What `field` returns; [`DecodeError::Unresolvable`] for writer bytes the plan refuses.
    pub fn fields(
        &self,
        input: &mut &[u8],
        mut field: impl FnMut(usize, &mut &[u8], Option<&Resolving<'p>>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let Some(steps) = self.plan.record_len(self.op) else {
            return Err(DecodeError::Unresolvable(
                "a record read field by field through a plan that is not a record's (a bug in \
                 avro-events)"
                    .into(),
            ));
        };
        let mut scratch = Vec::new();
        for index in 0..steps {
            match self.plan.field_step(self.op, index) {
                FieldStep::Read(position) => field(position, input, None)?,
                FieldStep::Nested(position, op) => {
                    let nested = Resolving { op, ..*self };
                    field(position, input, Some(&nested))?;
                }
                FieldStep::Rewrite(position, op) => {
                    self.plan
                        .rewrite_value(op, input, &mut scratch, self.limit)
                        .map_err(DecodeError::Unresolvable)?;
                    field(position, &mut &scratch[..], None)?;
                }
                FieldStep::Skip(op) => self
                    .plan
                    .skip_value(op, input)
                    .map_err(DecodeError::Unresolvable)?,
                FieldStep::Default(position, bytes) => field(position, &mut &bytes[..], None)?,
            }
        }
        Ok(())
    }
}
