/**
 * The page's one way to the service: gRPC-Web, binary protobuf, to the origin that served the page (the service
 * serves the dashboard and gRPC-Web on the same port, so no CORS is involved), with the caller's credentials on
 * every call.
 */
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { callHeaders, type Credentials } from "./credentials";
import { ModelCopy } from "./gen/modelcopy/v1/modelcopy_pb";

export type ModelCopyClient = Client<typeof ModelCopy>;

export function modelCopyClient(credentials: Credentials): ModelCopyClient {
  const withCredentials: Interceptor = (next) => (request) => {
    for (const [name, value] of callHeaders(credentials)) request.header.set(name, value);
    return next(request);
  };
  const transport = createGrpcWebTransport({
    baseUrl: location.origin,
    useBinaryFormat: true,
    interceptors: [withCredentials],
  });
  return createClient(ModelCopy, transport);
}
