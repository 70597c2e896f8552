import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import com.healthplatform.verdict.v1.AdminServiceGrpc;
import com.healthplatform.verdict.v1.DecisionServiceGrpc;
import com.healthplatform.verdict.v1.Destination;
import com.healthplatform.verdict.v1.Document;
import com.healthplatform.verdict.v1.EvaluateRequest;
import com.healthplatform.verdict.v1.EvaluateResponse;
import com.healthplatform.verdict.v1.GetDocumentRequest;
import com.healthplatform.verdict.v1.ListDocumentsRequest;
import com.healthplatform.verdict.v1.ListDocumentsResponse;
import com.healthplatform.verdict.v1.PutDocumentRequest;
import com.healthplatform.verdict.v1.ResultFormat;
import com.healthplatform.verdict.v1.RouteRequest;
import com.healthplatform.verdict.v1.RouteResponse;
import com.healthplatform.verdict.v1.Skipped;
import io.grpc.CallCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * Verdict from Java, the way docs/clients.md describes it: stubs generated from protos/ by protoc and the grpc-java
 * plugin, one shared channel with a retry policy and round_robin, facts sent as facts_json, the admin token as
 * CallCredentials, and errors read from their google.rpc.Status details.
 *
 * <p>Usage: {@code java VerdictExample TARGET TOKEN_FILE}, e.g. {@code dns:///127.0.0.1:50051
 * ~/.local/share/verdict/admin.token}. Every line it prints starts with what it shows, for tests to read. {@code
 * java VerdictExample evaluate TARGET RULE_SET FACTS_JSON} makes one Evaluate call (to watch the retry policy).
 */
public final class VerdictExample {
  /** 2^53 + 1: the first integer a double (and so a google.protobuf.Struct) cannot hold. */
  static final String BIG_PIN = "9007199254740993";

  public static void main(String[] args) throws Exception {
    if (args.length == 4 && args[0].equals("evaluate")) {
      evaluateOnce(args[1], args[2], args[3]);
      return;
    }
    if (args.length != 2) {
      System.err.println("usage: VerdictExample TARGET TOKEN_FILE");
      System.err.println("       VerdictExample evaluate TARGET RULE_SET FACTS_JSON");
      System.exit(2);
    }
    String token = Files.readString(Path.of(args[1]), StandardCharsets.UTF_8).strip();
    ManagedChannel channel = channel(args[0]);
    try {
      DecisionServiceGrpc.DecisionServiceBlockingStub decisions = DecisionServiceGrpc.newBlockingStub(channel);
      AdminServiceGrpc.AdminServiceBlockingStub admin =
          AdminServiceGrpc.newBlockingStub(channel).withCallCredentials(new BearerToken(token));
      evaluate(decisions);
      route(decisions);
      listDocuments(admin);
      errors(decisions, admin);
    } finally {
      channel.shutdown().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * One channel per process, shared by every stub and thread. The service config retries UNAVAILABLE only (a
   * replica restarting or draining); every other code would fail the same way again.
   */
  static ManagedChannel channel(String target) {
    Map<String, Object> retryPolicy =
        Map.of(
            "maxAttempts", 4.0, // numbers in a service config are doubles, as in its JSON form
            "initialBackoff", "0.1s",
            "maxBackoff", "2s",
            "backoffMultiplier", 2.0,
            "retryableStatusCodes", List.of("UNAVAILABLE"));
    Map<String, Object> methodConfig =
        Map.of(
            "name", // decisions and admin reads; a write is retried by the caller after re-reading, not blindly
            List.of(
                Map.of("service", "verdict.v1.DecisionService"),
                Map.of("service", "verdict.v1.AdminService", "method", "GetDocument"),
                Map.of("service", "verdict.v1.AdminService", "method", "ListDocuments"),
                Map.of("service", "verdict.v1.AdminService", "method", "ListVersions"),
                Map.of("service", "verdict.v1.AdminService", "method", "ValidateDocument")),
            "timeout", "2s", // a default deadline for calls that set none
            "retryPolicy", retryPolicy);
    return ManagedChannelBuilder.forTarget(target)
        .usePlaintext()
        .defaultLoadBalancingPolicy("round_robin") // over every address the dns:/// target resolves to
        .defaultServiceConfig(Map.of("methodConfig", List.of(methodConfig)))
        .enableRetry()
        .build();
  }

  static void evaluate(DecisionServiceGrpc.DecisionServiceBlockingStub decisions) {
    // facts_json keeps integers exact (a Java long id above 2^53 would change in a Struct); RESULT_FORMAT_JSON asks
    // for result_json, exact the same way.
    EvaluateResponse hidden =
        decisions
            .withDeadlineAfter(2, TimeUnit.SECONDS)
            .evaluate(
                EvaluateRequest.newBuilder()
                    .setRuleSet("pharmacist.otc_block")
                    .setFactsJson("{\"scene\": \"NON_MEDICAL\", \"role\": \"PHARMACIST\", \"categoryId\": 1001}")
                    .setResultFormat(ResultFormat.RESULT_FORMAT_JSON)
                    .build());
    System.out.printf(
        "evaluate: rule_set=%s version=%d matched=%s result_json=%s%n",
        hidden.getRuleSet(), hidden.getVersion(), hidden.getMatchedRulesList(), hidden.getResultJson());

    String facts =
        "{\"scene\": \"MEDICAL\", \"role\": \"PHARMACIST\", \"categoryId\": 1001, \"pin\": " + BIG_PIN + "}";
    EvaluateResponse audited =
        decisions
            .withDeadlineAfter(2, TimeUnit.SECONDS)
            .evaluate(
                EvaluateRequest.newBuilder()
                    .setRuleSet("pharmacist.otc_block")
                    .setFactsJson(facts)
                    .setResultFormat(ResultFormat.RESULT_FORMAT_JSON)
                    .build());
    System.out.printf(
        "evaluate exact: matched=%s result_json=%s%n", audited.getMatchedRulesList(), audited.getResultJson());

    // The same decision as a Struct: fine for small numbers, and the result comes back as a google.protobuf.Value.
    Struct structFacts =
        Struct.newBuilder()
            .putFields("scene", Value.newBuilder().setStringValue("NON_MEDICAL").build())
            .putFields("role", Value.newBuilder().setStringValue("PHARMACIST").build())
            .putFields("categoryId", Value.newBuilder().setNumberValue(1001).build())
            .build();
    EvaluateResponse viaStruct =
        decisions
            .withDeadlineAfter(2, TimeUnit.SECONDS)
            .evaluate(
                EvaluateRequest.newBuilder().setRuleSet("pharmacist.otc_block").setFacts(structFacts).build());
    Map<String, Value> result = viaStruct.getResult().getStructValue().getFieldsMap();
    System.out.printf(
        "evaluate struct: action=%s result=%s%n", result.get("action").getStringValue(), show(viaStruct.getResult()));
  }

  /** One Evaluate through the channel's retry policy: its answer, or its error and details. */
  static void evaluateOnce(String target, String ruleSet, String factsJson) throws InterruptedException {
    ManagedChannel channel = channel(target);
    try {
      EvaluateResponse answer =
          DecisionServiceGrpc.newBlockingStub(channel)
              .withDeadlineAfter(10, TimeUnit.SECONDS)
              .evaluate(
                  EvaluateRequest.newBuilder()
                      .setRuleSet(ruleSet)
                      .setFactsJson(factsJson)
                      .setResultFormat(ResultFormat.RESULT_FORMAT_JSON)
                      .build());
      System.out.printf("evaluate: version=%d result_json=%s%n", answer.getVersion(), answer.getResultJson());
    } catch (StatusRuntimeException e) {
      printError("evaluate", e);
    } finally {
      channel.shutdown().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  static void route(DecisionServiceGrpc.DecisionServiceBlockingStub decisions) {
    RouteResponse routing =
        decisions
            .withDeadlineAfter(2, TimeUnit.SECONDS)
            .route(
                RouteRequest.newBuilder()
                    .setTopic("order.status.paid")
                    .addTags("PAID")
                    .setKey("order-42")
                    // Raw JSON bytes: integers stay exact, and the server parses them only if a condition reads body.
                    .setBody(com.google.protobuf.ByteString.copyFromUtf8("{\"amount\": 99.5, \"hasRx\": true}"))
                    .setContentType("application/json")
                    .build());
    for (Destination d : routing.getDestinationsList()) {
      System.out.printf("route destination: %s -> %s (priority %d)%n", d.getSystem(), d.getTarget(), d.getPriority());
    }
    for (Skipped s : routing.getSkippedList()) {
      System.out.printf("route skipped: %s %s %s%n", s.getSystem(), s.getReason(), s.getDetail());
    }
  }

  static void listDocuments(AdminServiceGrpc.AdminServiceBlockingStub admin) {
    String pageToken = "";
    do { // ListDocuments answers a page at a time: follow next_page_token until it is empty
      ListDocumentsResponse page =
          admin
              .withDeadlineAfter(2, TimeUnit.SECONDS)
              .listDocuments(ListDocumentsRequest.newBuilder().setPageSize(2).setPageToken(pageToken).build());
      for (Document doc : page.getDocumentsList()) {
        System.out.printf("admin document: %s %s v%d%n", doc.getKind(), doc.getName(), doc.getVersion());
      }
      pageToken = page.getNextPageToken();
    } while (!pageToken.isEmpty());
  }

  static void errors(
      DecisionServiceGrpc.DecisionServiceBlockingStub decisions, AdminServiceGrpc.AdminServiceBlockingStub admin) {
    try {
      decisions
          .withDeadlineAfter(2, TimeUnit.SECONDS)
          .evaluate(EvaluateRequest.newBuilder().setRuleSet("no.such.rules").setFactsJson("{}").build());
      System.out.println("error: none (expected NOT_FOUND)");
    } catch (StatusRuntimeException e) {
      printError("evaluate unknown rule set", e);
    }
    try {
      admin
          .withDeadlineAfter(2, TimeUnit.SECONDS)
          .getDocument(GetDocumentRequest.newBuilder().setKind("RuleSet").setName("no.such.rules").build());
      System.out.println("error: none (expected NOT_FOUND)");
    } catch (StatusRuntimeException e) {
      printError("get unknown document", e);
    }
    try {
      String broken =
          "kind: RuleSet\nname: java.broken\ndefault: 0\nrules:\n  - id: r1\n    when: \"x >\"\n    then: 1\n";
      admin
          .withDeadlineAfter(2, TimeUnit.SECONDS)
          .putDocument(PutDocumentRequest.newBuilder().setContent(broken).build());
      System.out.println("error: none (expected INVALID_ARGUMENT)");
    } catch (StatusRuntimeException e) {
      printError("put broken document", e);
    }
    try { // the same admin call without the token
      AdminServiceGrpc.newBlockingStub(decisions.getChannel())
          .withDeadlineAfter(2, TimeUnit.SECONDS)
          .listDocuments(ListDocumentsRequest.getDefaultInstance());
      System.out.println("error: none (expected UNAUTHENTICATED)");
    } catch (StatusRuntimeException e) {
      printError("admin without token", e);
    }
  }

  /** The code, then what the google.rpc.Status in the grpc-status-details-bin trailer says. */
  static void printError(String what, StatusRuntimeException e) {
    com.google.rpc.Status details = StatusProto.fromThrowable(e); // null when the trailer is absent
    System.out.printf("error %s: code=%s%n", what, e.getStatus().getCode());
    if (details == null) {
      System.out.printf("error %s: no details (%s)%n", what, e.getStatus().getDescription());
      return;
    }
    for (Any detail : details.getDetailsList()) {
      try {
        if (detail.is(ErrorInfo.class)) {
          ErrorInfo info = detail.unpack(ErrorInfo.class);
          System.out.printf(
              "error %s: reason=%s domain=%s metadata=%s%n",
              what, info.getReason(), info.getDomain(), new java.util.TreeMap<>(info.getMetadataMap()));
        } else if (detail.is(BadRequest.class)) {
          for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
            System.out.printf("error %s: field %s: %s%n", what, v.getField(), v.getDescription());
          }
        } else if (detail.is(RetryInfo.class)) {
          com.google.protobuf.Duration delay = detail.unpack(RetryInfo.class).getRetryDelay();
          long millis = delay.getSeconds() * 1000 + delay.getNanos() / 1_000_000;
          System.out.printf("error %s: retry after %d ms%n", what, millis);
        }
      } catch (InvalidProtocolBufferException bad) {
        System.out.printf("error %s: unreadable detail %s%n", what, detail.getTypeUrl());
      }
    }
  }

  /** A google.protobuf.Value as JSON-like text, walking its kinds the way a caller reads a result. */
  static String show(Value value) {
    switch (value.getKindCase()) {
      case NULL_VALUE:
        return "null";
      case BOOL_VALUE:
        return Boolean.toString(value.getBoolValue());
      case NUMBER_VALUE: // always a double: 1001 arrives as 1001.0
        return Double.toString(value.getNumberValue());
      case STRING_VALUE:
        return "\"" + value.getStringValue() + "\"";
      case LIST_VALUE:
        return value.getListValue().getValuesList().stream()
            .map(VerdictExample::show)
            .collect(Collectors.joining(", ", "[", "]"));
      case STRUCT_VALUE:
        return new java.util.TreeMap<>(value.getStructValue().getFieldsMap())
            .entrySet().stream()
                .map(e -> "\"" + e.getKey() + "\": " + show(e.getValue()))
                .collect(Collectors.joining(", ", "{", "}"));
      default:
        return "(unset)";
    }
  }

  /** Adds `authorization: Bearer <token>` to every call of the stub it is attached to (AdminService only). */
  static final class BearerToken extends CallCredentials {
    private static final Metadata.Key<String> AUTHORIZATION =
        Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private final String token;

    BearerToken(String token) {
      this.token = token;
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + token);
      applier.apply(headers);
    }

    @Override
    public void thisUsesUnstableApi() {}
  }
}
