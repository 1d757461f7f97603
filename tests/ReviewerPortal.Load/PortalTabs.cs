using Microsoft.Playwright;

namespace ReviewerPortal.Load;

/// <summary>One reviewer tab of the <c>portal</c> scenario: its own Blazor circuit on acme's queue.</summary>
internal interface ITab : IAsyncDisposable
{
    /// <summary>When the tab first showed each approval id (Unix ms on this machine's clock).</summary>
    Task<IReadOnlyDictionary<string, double>> SeenAsync();

    /// <summary>Its connection to the app closed while it was open.</summary>
    bool Disconnected { get; }

    /// <summary>The page crashed, or the circuit failed.</summary>
    bool Crashed { get; }
}

/// <summary>Where the scenario's tabs come from, signed in as alice (an acme approver).</summary>
internal interface ITabs : IAsyncDisposable
{
    /// <summary>For the report: what a tab is.</summary>
    string Description { get; }

    /// <summary>For the report: where a row counts as shown.</summary>
    string Arrival { get; }

    /// <summary>Opens /queue/acme in a new tab and waits until it is interactive and shows its queue.</summary>
    Task<ITab> OpenAsync();
}

/// <summary>Playwright pages in one signed-in context of Debian's headless chromium (/usr/bin/chromium).</summary>
internal sealed class ChromiumTabs(IPlaywright playwright, IBrowser browser, IBrowserContext context) : ITabs
{
    /// <summary>Each tab notes when it first shows each queue row (its own clock is the machine's: Date.now()).</summary>
    private const string SeenScript = """
        (() => {
          window.__seen = {};
          const scan = () => {
            for (const row of document.querySelectorAll('[data-testid=queue-row][data-id]')) {
              const id = row.getAttribute('data-id');
              if (!(id in window.__seen)) window.__seen[id] = Date.now();
            }
          };
          new MutationObserver(scan).observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-id'] });
        })();
        """;

    public string Description => "pages of headless chromium";

    public string Arrival => "in the tab's DOM";

    public static async Task<ChromiumTabs> StartAsync(AppProcess app)
    {
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"],
        });
        // Tall enough that every pending row of the run is on screen (the queue is virtualised, oldest first).
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = app.BaseUrl,
            ViewportSize = new ViewportSize { Width = 1280, Height = 2400 },
        });
        context.SetDefaultTimeout(60_000);
        await context.AddInitScriptAsync(SeenScript);
        var first = await context.NewPageAsync();
        first.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                Console.Error.WriteLine($"  [first tab, console] {message.Text}");
            }
        };
        await first.GotoAsync("/account/login");
        await first.FillAsync("#username", "alice");
        await first.FillAsync("#password", "demo-alice");
        await first.ClickAsync("#sign-in");
        await first.GetByTestId("signed-in-user").WaitForAsync();
        await first.CloseAsync();
        return new ChromiumTabs(playwright, browser, context);
    }

    public async Task<ITab> OpenAsync()
    {
        var page = await context.NewPageAsync();
        var tab = new Tab(page);
        page.WebSocket += (_, socket) => socket.Close += (_, _) => tab.Disconnected = true;
        page.Crash += (_, _) => tab.Crashed = true;
        await page.GotoAsync("/queue/acme");
        await page.Locator("[data-interactive=yes]").WaitForAsync();
        await page.GetByTestId("queue").WaitForAsync();
        return tab;
    }

    public async ValueTask DisposeAsync()
    {
        await context.CloseAsync();
        await browser.DisposeAsync();
        playwright.Dispose();
    }

    private sealed class Tab(IPage page) : ITab
    {
        public bool Disconnected { get; set; }

        public bool Crashed { get; set; }

        public async Task<IReadOnlyDictionary<string, double>> SeenAsync() =>
            await page.EvaluateAsync<Dictionary<string, double>>("() => window.__seen");

        public ValueTask DisposeAsync() => new(page.CloseAsync());
    }
}

/// <summary>
/// Raw Blazor circuits (<see cref="BlazorCircuit"/>), no browser: what the server spends and how soon it sends a row,
/// without chromium's layout and paint competing for the same two cores.
/// </summary>
internal sealed class CircuitTabs(HttpClient http, string cookie) : ITabs
{
    public string Description => "raw Blazor circuits over the _blazor hub (no browser)";

    public string Arrival => "in a render batch the tab received";

    public static async Task<CircuitTabs> StartAsync(AppProcess app)
    {
        var baseUrl = new Uri(app.BaseUrl + "/");
        var cookie = await BlazorCircuit.SignInAsync(baseUrl, "alice", "demo-alice");
        return new CircuitTabs(new HttpClient { BaseAddress = baseUrl }, cookie);
    }

    public async Task<ITab> OpenAsync() =>
        new Tab(await BlazorCircuit.OpenAsync(http, cookie, "queue/acme", CancellationToken.None));

    public ValueTask DisposeAsync()
    {
        http.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class Tab(BlazorCircuit circuit) : ITab
    {
        public bool Disconnected => circuit.Disconnected;

        public bool Crashed => circuit.Error is not null;

        public Task<IReadOnlyDictionary<string, double>> SeenAsync() =>
            Task.FromResult<IReadOnlyDictionary<string, double>>(circuit.Seen.ToDictionary(p => p.Key, p => (double)p.Value));

        public ValueTask DisposeAsync() => circuit.DisposeAsync();
    }
}
