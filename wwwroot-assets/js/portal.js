// ReviewerPortal: small browser helpers called from Blazor components.
window.reviewerPortal = window.reviewerPortal || {};
