/**
 * Query depth and complexity limits, computed on the parsed operation with its variables, so one
 * function guards HTTP (an Apollo plugin) and WebSocket (graphql-ws onSubscribe) alike.
 * Cost model: every field costs 1; a field given `first`/`last` multiplies the cost of its
 * selection by that page size, and a connection field given neither by the maximum page size, as
 * connection-heavy queries are where a client can ask for a lot with little text.
 */
import {
  getNamedType,
  isObjectType,
  Kind,
  type GraphQLSchema,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from "graphql";
import type { Limits } from "../config.js";
import { AppError } from "../errors.js";

export interface OperationCost {
  depth: number;
  complexity: number;
}

/** Names of fields that return a cursor connection (their type name ends in "Connection"). */
export function connectionFields(schema: GraphQLSchema): ReadonlySet<string> {
  const names = new Set<string>();
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) if (getNamedType(field.type).name.endsWith("Connection")) names.add(field.name);
  }
  return names;
}

function pickOperation(doc: DocumentNode, operationName?: string | null): OperationDefinitionNode | undefined {
  const ops = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (operationName) return ops.find((op) => op.name?.value === operationName);
  return ops.length === 1 ? ops[0] : undefined;
}

function valueToNumber(node: ValueNode, variables: Record<string, unknown>): number | undefined {
  if (node.kind === Kind.INT) return Number(node.value);
  if (node.kind === Kind.VARIABLE) {
    const value = variables[node.name.value];
    return typeof value === "number" ? value : undefined;
  }
  return undefined;
}

/** Depth and cost of the operation that will run; undefined parts count as 0 (validation rejects them). */
export function measureOperation(
  doc: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
  limits: Pick<Limits, "maxPageSize">,
  connections: ReadonlySet<string> = new Set(),
): OperationCost {
  const op = pickOperation(doc, operationName);
  if (op === undefined) return { depth: 0, complexity: 0 };
  const vars = variables ?? {};
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of doc.definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  }

  // Returns [depth, cost] of a selection set; `seen` stops fragment cycles (validation reports them).
  const walk = (set: SelectionSetNode, seen: Set<string>): [number, number] => {
    let depth = 0;
    let cost = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        if (sel.name.value.startsWith("__")) continue; // introspection meta fields are free
        let multiplier = connections.has(sel.name.value) ? limits.maxPageSize : 1;
        for (const arg of sel.arguments ?? []) {
          // A null or missing variable leaves the default (the server then uses its own page size).
          const size = arg.name.value === "first" || arg.name.value === "last" ? valueToNumber(arg.value, vars) : undefined;
          if (size !== undefined) multiplier = Math.max(1, size);
        }
        const [childDepth, childCost] = sel.selectionSet ? walk(sel.selectionSet, seen) : [0, 0];
        depth = Math.max(depth, 1 + childDepth);
        cost += 1 + multiplier * childCost;
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const [d, c] = walk(sel.selectionSet, seen);
        depth = Math.max(depth, d);
        cost += c;
      } else {
        const name = sel.name.value;
        const frag = fragments.get(name);
        if (frag === undefined || seen.has(name)) continue;
        const [d, c] = walk(frag.selectionSet, new Set([...seen, name]));
        depth = Math.max(depth, d);
        cost += c;
      }
    }
    return [depth, cost];
  };
  const [depth, complexity] = walk(op.selectionSet, new Set());
  return { depth, complexity };
}

/** Throws LIMIT_EXCEEDED when the operation is too deep or too costly. */
export function enforceOperationLimits(
  doc: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
  limits: Pick<Limits, "maxPageSize" | "maxQueryDepth" | "maxQueryComplexity">,
  connections: ReadonlySet<string> = new Set(),
): OperationCost {
  const cost = measureOperation(doc, operationName, variables, limits, connections);
  if (cost.depth > limits.maxQueryDepth) {
    throw AppError.limit("query", `a depth of at most ${limits.maxQueryDepth}`, `depth ${cost.depth}`);
  }
  if (cost.complexity > limits.maxQueryComplexity) {
    throw AppError.limit("query", `a complexity of at most ${limits.maxQueryComplexity}`, `complexity ${cost.complexity}`);
  }
  return cost;
}
