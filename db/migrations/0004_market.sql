-- Reserved for this change; replaced before landing.
SELECT 1;
