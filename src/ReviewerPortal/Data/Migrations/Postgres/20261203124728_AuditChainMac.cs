using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ReviewerPortal.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class AuditChainMac : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "ChainVersion",
                table: "AuditEntries",
                type: "integer",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "ChainVersion",
                table: "AuditEntries");
        }
    }
}
