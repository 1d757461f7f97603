using Microsoft.Extensions.FileProviders;

namespace ReviewerPortal.Infrastructure.Http;

public static class PortalAssets
{
    /// <summary>Serves the portal's css/js/icons from <c>wwwroot-assets/</c> (copied beside the app at build).</summary>
    public static IApplicationBuilder UsePortalAssets(this WebApplication app)
    {
        var folder = Path.Combine(AppContext.BaseDirectory, "wwwroot-assets");
        if (Directory.Exists(folder))
        {
            app.UseStaticFiles(new StaticFileOptions { FileProvider = new PhysicalFileProvider(folder), RequestPath = "/assets" });
        }
        return app;
    }
}
