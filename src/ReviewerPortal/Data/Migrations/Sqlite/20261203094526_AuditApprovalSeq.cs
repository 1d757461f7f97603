using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ReviewerPortal.Data.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class AuditApprovalSeq : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "ApprovalSeq",
                table: "AuditEntries",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "IX_AuditEntries_Tenant_ApprovalId_ApprovalSeq",
                table: "AuditEntries",
                columns: new[] { "Tenant", "ApprovalId", "ApprovalSeq" },
                unique: true,
                filter: "\"ApprovalSeq\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_AuditEntries_Tenant_ApprovalId_ApprovalSeq",
                table: "AuditEntries");

            migrationBuilder.DropColumn(
                name: "ApprovalSeq",
                table: "AuditEntries");
        }
    }
}
