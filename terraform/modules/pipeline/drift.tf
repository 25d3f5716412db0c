# Scheduled drift detection: EventBridge starts the drift project (readonly.tf) on
# `drift_schedule`; it notifies the pipeline's topic only when something drifted.
resource "aws_cloudwatch_event_rule" "drift" {
  count = length(compact([var.drift_schedule]))

  name                = "${var.project}-drift"
  description         = "Starts ${var.project}-drift: mlcicd drift --all with the read-only plan roles."
  schedule_expression = var.drift_schedule
}

resource "aws_cloudwatch_event_target" "drift" {
  count = length(compact([var.drift_schedule]))

  rule      = aws_cloudwatch_event_rule.drift[0].name
  target_id = "drift"
  arn       = aws_codebuild_project.this["drift"].arn
  role_arn  = aws_iam_role.drift_schedule[0].arn
}

# EventBridge may start this one project and nothing else.
resource "aws_iam_role" "drift_schedule" {
  count = length(compact([var.drift_schedule]))

  name               = "${var.project}-drift-schedule"
  description        = "Lets EventBridge start the ${var.project}-drift CodeBuild project on its schedule."
  assume_role_policy = local.service_trust["events"]
}

data "aws_iam_policy_document" "drift_schedule" {
  count = length(compact([var.drift_schedule]))

  statement {
    sid       = "StartDrift"
    actions   = ["codebuild:StartBuild"]
    resources = [aws_codebuild_project.this["drift"].arn]
  }
}

resource "aws_iam_role_policy" "drift_schedule" {
  count = length(compact([var.drift_schedule]))

  name   = "start-drift"
  role   = aws_iam_role.drift_schedule[0].id
  policy = data.aws_iam_policy_document.drift_schedule[0].json
}
