using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace SteerEngine.Server.Http;

/// <summary>
/// The side-by-side chat page (wwwroot/, embedded in this assembly): <c>/</c> is index.html, and each
/// other file is served by its name. Explicit routes, so the API's fallback (404) never shadows them.
/// </summary>
public static class StaticPage
{
    const string Prefix = "wwwroot/";

    static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8", [".js"] = "text/javascript; charset=utf-8", [".css"] = "text/css; charset=utf-8",
        [".png"] = "image/png", [".svg"] = "image/svg+xml",
    };

    public static void Map(WebApplication app)
    {
        Assembly assembly = typeof(StaticPage).Assembly;
        foreach (string resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            string name = resource[Prefix.Length..];
            string type = ContentTypes.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream");
            IResult Serve() => Results.Stream(assembly.GetManifestResourceStream(resource)!, type);
            app.MapGet("/" + name, Serve);
            if (name == "index.html") app.MapGet("/", Serve);
        }
    }
}
