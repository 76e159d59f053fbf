namespace SteerEngine.Server.Http;

/// <summary>
/// An error the client caused or must know about, with the HTTP status and the fields of OpenAI's
/// error object: <c>{"error": {"message", "type", "param", "code"}}</c>.
/// </summary>
public sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param: param, code: code);
    public static ApiException NotFound(string message, string? param = null, string code = "not_found") => new(404, message, param: param, code: code);
}
