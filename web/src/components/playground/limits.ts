/**
 * The sampling fields' limits, read from the gateway's generated OpenAPI document
 * (web/openapi.json, which carries each field's bounds), so the controls never
 * drift from what the API accepts.
 */
import openapi from "../../../openapi.json";

import type { SamplingForm } from "@/lib/conversations";

export interface Limit {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  integer: boolean;
  description?: string;
}

interface PropertySchema {
  type?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  maxItems?: number;
  description?: string;
  items?: { minLength?: number; maxLength?: number };
}

const schemas = (openapi as unknown as { components: { schemas: Record<string, { properties?: Record<string, PropertySchema> }> } })
  .components.schemas;
const sampling = schemas["mlxhub.v1.SamplingParams"]?.properties ?? {};

const INT32_MAX = 2147483647;

function limitOf(field: string): Limit {
  const p = sampling[field] ?? {};
  return {
    minimum: p.minimum,
    // int32's own range is no limit worth showing
    maximum: p.maximum === INT32_MAX ? undefined : p.maximum,
    exclusiveMinimum: p.exclusiveMinimum,
    exclusiveMaximum: p.exclusiveMaximum,
    integer: p.type === "integer",
    description: p.description,
  };
}

export type NumericField = Exclude<keyof SamplingForm, "seed" | "stop">;

export const LIMITS: Record<NumericField, Limit> = {
  temperature: limitOf("temperature"),
  topP: limitOf("topP"),
  topK: limitOf("topK"),
  minP: limitOf("minP"),
  repetitionPenalty: limitOf("repetitionPenalty"),
  maxTokens: limitOf("maxTokens"),
};

const stopSchema = sampling.stop ?? {};
export const STOP_LIMITS = {
  maxItems: stopSchema.maxItems ?? 8,
  minLength: stopSchema.items?.minLength ?? 1,
  maxLength: stopSchema.items?.maxLength ?? 128,
};

/** "0 ≤ x ≤ 1", "0 < x ≤ 1", "≥ 1": the range a control accepts. */
export function describeLimit(limit: Limit): string {
  const low = limit.exclusiveMinimum !== undefined ? `${limit.exclusiveMinimum} <` : limit.minimum !== undefined ? `${limit.minimum} ≤` : "";
  const high = limit.exclusiveMaximum !== undefined ? `< ${limit.exclusiveMaximum}` : limit.maximum !== undefined ? `≤ ${limit.maximum}` : "";
  if (low && high) return `${low} x ${high}`;
  if (low) return low.endsWith("<") ? `> ${limit.exclusiveMinimum}` : `≥ ${limit.minimum}`;
  if (high) return high;
  return "";
}

/** Why a typed value is outside its limits (undefined when it is fine or empty: empty is the default). */
export function checkValue(text: string, limit: Limit): string | undefined {
  if (text.trim() === "") return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) return "Enter a number.";
  if (limit.integer && !Number.isInteger(value)) return "Enter a whole number.";
  const range = describeLimit(limit);
  if (limit.minimum !== undefined && value < limit.minimum) return `Must be ${range}.`;
  if (limit.maximum !== undefined && value > limit.maximum) return `Must be ${range}.`;
  if (limit.exclusiveMinimum !== undefined && value <= limit.exclusiveMinimum) return `Must be ${range}.`;
  if (limit.exclusiveMaximum !== undefined && value >= limit.exclusiveMaximum) return `Must be ${range}.`;
  return undefined;
}

export function checkSeed(text: string): string | undefined {
  if (text.trim() === "") return undefined;
  return /^-?[0-9]+$/.test(text.trim()) ? undefined : "Enter a whole number.";
}

export function checkStop(text: string): string | undefined {
  const stops = text.split("\n").filter((s) => s !== "");
  if (stops.length > STOP_LIMITS.maxItems) return `At most ${STOP_LIMITS.maxItems} stop strings.`;
  if (stops.some((s) => s.length > STOP_LIMITS.maxLength)) return `Each stop string is at most ${STOP_LIMITS.maxLength} characters.`;
  return undefined;
}

/** Every field's problem, by field; empty when the form can be sent. */
export function checkSampling(form: SamplingForm): Partial<Record<keyof SamplingForm, string>> {
  const problems: Partial<Record<keyof SamplingForm, string>> = {};
  for (const field of Object.keys(LIMITS) as NumericField[]) {
    const problem = checkValue(form[field], LIMITS[field]);
    if (problem) problems[field] = problem;
  }
  const seed = checkSeed(form.seed);
  if (seed) problems.seed = seed;
  const stop = checkStop(form.stop);
  if (stop) problems.stop = stop;
  return problems;
}
