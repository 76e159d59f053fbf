using System.Net;
using System.Net.Sockets;

namespace SteerEngine.Tests.Judging;

/// <summary>An HTTP listener on 127.0.0.1 at a free port that hands each request to <see cref="Handle"/> on its own task. Stops on Dispose.</summary>
public abstract class LoopbackHttpServer : IDisposable
{
    readonly HttpListener _listener = new();

    protected LoopbackHttpServer()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _ = Task.Run(Loop);
    }

    public int Port { get; }
    public string BaseUrl => $"http://127.0.0.1:{Port}/v1";
    /// <summary>Cancelled on Dispose: handlers stop waiting.</summary>
    protected CancellationTokenSource Stop { get; } = new();

    protected abstract Task Handle(HttpListenerContext ctx);

    async Task Loop()
    {
        while (!Stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception) when (Stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    public virtual void Dispose()
    {
        Stop.Cancel();
        try
        {
            _listener.Stop();
            _listener.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }
}
