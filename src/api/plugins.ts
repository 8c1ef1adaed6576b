/** Apollo Server plugins of our own, each named for what it does. */
import type { ApolloServerPlugin } from "@apollo/server";
import type { Limits } from "../config.js";
import { AppError } from "../errors.js";
import type { Context } from "./context.js";
import { toGraphQLError } from "./errors.js";
import { enforceOperationLimits } from "./limits.js";

/** Refuses too deep or too costly operations (LIMIT_EXCEEDED) once Apollo has resolved the operation. */
export function operationLimitsPlugin(limits: Limits, connections: ReadonlySet<string>): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operationName, request, operation }) {
          try {
            // Over HTTP a subscription would run its event resolver without an event (found by
            // test/fuzz): refuse it, naming where subscriptions are served.
            if (operation?.operation === "subscription") {
              throw AppError.badInput("query", "a query or mutation (subscriptions run over the WebSocket at /graphql)", "a subscription");
            }
            enforceOperationLimits(document, operationName, request.variables, limits, connections);
          } catch (e) {
            throw e instanceof AppError ? toGraphQLError(e) : e;
          }
        },
      };
    },
  };
}

/** Runs `dispose` when Apollo drains, after HTTP has drained: the WebSocket transport stops with it. */
export function disposeOnDrainPlugin(dispose: () => Promise<void>): ApolloServerPlugin<Context> {
  return {
    async serverWillStart() {
      return {
        async drainServer() {
          await dispose();
        },
      };
    },
  };
}
