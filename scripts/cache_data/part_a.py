"""Labelled groups, test-part domains: hr-payroll, education-lms, scientific-computing."""

from __future__ import annotations

from typing import Any

PY = {"language": "python", "team_size": "small", "existing_stack": ["postgresql", "docker"]}
PY_C = {"language": "Python", "team_size": "Small", "existing_stack": ["Docker", "PostgreSQL"]}
TS = {"language": "typescript", "frameworks": ["react", "node.js"], "team_size": "medium"}
TS_C = {"language": "TypeScript", "frameworks": ["Node.js", "React"], "team_size": "Medium"}
JAVA = {"language": "java", "frameworks": ["spring boot"], "team_size": "large", "compliance": ["sox"]}
JAVA_C = {"language": "Java", "frameworks": ["Spring Boot"], "team_size": "Large", "compliance": ["SOX"]}
RB = {
    "language": "ruby",
    "frameworks": ["rails"],
    "team_size": "small",
    "existing_stack": ["postgresql", "sidekiq"],
}
RB_C = {
    "language": "Ruby",
    "frameworks": ["Rails"],
    "team_size": "small",
    "existing_stack": ["Sidekiq", "PostgreSQL"],
}
SCI = {"language": "python", "frameworks": ["numpy", "scipy"], "team_size": "solo"}
SCI_C = {"language": "Python", "frameworks": ["SciPy", "NumPy"], "team_size": "Solo"}
JL = {"language": "julia", "team_size": "solo", "existing_stack": ["slurm"]}
JL_C = {"language": "Julia", "team_size": "Solo", "existing_stack": ["SLURM"]}
CPP = {"language": "c++", "frameworks": ["eigen"], "team_size": "small", "existing_stack": ["cmake"]}
CPP_C = {"language": "C++", "frameworks": ["Eigen"], "team_size": "Small", "existing_stack": ["CMake"]}


def swap(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


GROUPS: list[tuple[str, dict[str, Any], str, list[tuple[Any, ...]]]] = [
    # ------------------------------------------------------------------ hr-payroll
    ("hr-payroll", PY, "Write a function that computes an employee's overtime pay at 1.5 times the hourly rate for every hour past 40 in a week.", [
        ("paraphrase", "I need a function for overtime: hours over 40 in a week get paid at one and a half times the employee's normal hourly rate."),
        ("paraphrase", "Compute weekly overtime pay, where each hour beyond forty is paid at 1.5x the hourly wage."),
        ("cosmetic_context", "Write a function that computes an employee's overtime pay at 1.5 times the hourly rate for every hour past 40 in a week.", PY_C),
        ("trap_number", "Write a function that computes an employee's overtime pay at 2 times the hourly rate for every hour past 40 in a week."),
        ("trap_number", "Write a function that computes an employee's overtime pay at 1.5 times the hourly rate for every hour past 8 in a day."),
        ("context_swap", None, swap(PY, language="go")),
    ]),
    ("hr-payroll", JAVA, "Generate monthly payslips as PDFs and email each one to the employee's work address.", [
        ("paraphrase", "Every month, produce a PDF pay slip per employee and send it to them at their company email."),
        ("cosmetic_context", "Generate monthly payslips as PDFs and email each one to the employee's work address.", JAVA_C),
        ("trap_direction", "Import the monthly payslip PDFs from each employee's work email into the payroll system."),
        ("trap_number", "Generate weekly payslips as PDFs and email each one to the employee's work address."),
        ("trap_scope", "Generate monthly payslips as PDFs, email each one to the employee's work address and archive a copy in S3 for seven years."),
        ("context_swap", None, swap(JAVA, compliance=[])),
    ]),
    ("hr-payroll", RB, "Add a leave request form where employees pick start and end dates and their manager approves or rejects it.", [
        ("paraphrase", "Let staff request time off by choosing the first and last day; the request then goes to their manager to approve or decline."),
        ("paraphrase", "Build the time-off request flow: an employee submits a date range, their manager accepts or rejects it."),
        ("cosmetic_context", "Add a leave request form where employees pick start and end dates and their manager approves or rejects it.", RB_C),
        ("trap_negation", "Add a leave request form where employees pick start and end dates, approved automatically without any manager review."),
        ("trap_direction", "Add a leave request form where managers pick start and end dates and the employee approves or rejects it."),
        ("unrelated", "Add a page where employees update their bank account details for salary payments."),
    ]),
    ("hr-payroll", PY, "Prorate the first month's salary for employees who start mid-month, based on calendar days worked.", [
        ("paraphrase", "When someone joins partway through a month, pay them only the share of the monthly salary that matches the calendar days they were employed."),
        ("cosmetic_context", "Prorate the first month's salary for employees who start mid-month, based on calendar days worked.", PY_C),
        ("trap_entity", "Prorate the first month's salary for employees who start mid-month, based on business days worked."),
        ("trap_direction", "Prorate the last month's salary for employees who leave mid-month, based on calendar days worked."),
        ("context_swap", None, swap(PY, team_size="large")),
    ]),
    ("hr-payroll", TS, "Show an org chart that lets HR drag an employee under a different manager.", [
        ("paraphrase", "Build an interactive organisation chart where HR can reassign someone to a new manager by dragging them."),
        ("paraphrase", "HR wants to move people between managers by drag and drop on the company hierarchy chart."),
        ("cosmetic_context", "Show an org chart that lets HR drag an employee under a different manager.", TS_C),
        ("trap_negation", "Show a read-only org chart where HR cannot move an employee under a different manager."),
        ("trap_scope", "Show an org chart that lets HR drag an employee under a different manager and export the chart as a PNG."),
        ("context_swap", None, swap(TS, frameworks=["vue", "node.js"])),
    ]),
    ("hr-payroll", JAVA, "Withhold federal income tax from each paycheck using the IRS percentage method tables.", [
        ("paraphrase", "Calculate the federal income tax to take out of every paycheck with the percentage-method withholding tables the IRS publishes."),
        ("cosmetic_context", "Withhold federal income tax from each paycheck using the IRS percentage method tables.", JAVA_C),
        ("trap_entity", "Withhold federal income tax from each paycheck using the IRS wage bracket method tables."),
        ("trap_entity", "Withhold state income tax from each paycheck using the California percentage method tables."),
        ("context_swap", None, swap(JAVA, language="kotlin")),
    ]),
    ("hr-payroll", RB, "Send a reminder to managers whose team timesheets are still unapproved two days after the pay period ends.", [
        ("paraphrase", "If a manager hasn't signed off their team's timesheets 2 days after the pay period closes, nudge them."),
        ("cosmetic_context", "Send a reminder to managers whose team timesheets are still unapproved two days after the pay period ends.", RB_C),
        ("trap_number", "Send a reminder to managers whose team timesheets are still unapproved two weeks after the pay period ends."),
        ("trap_direction", "Send a reminder to managers whose team timesheets are still unapproved two days before the pay period ends."),
        ("trap_direction", "Send a reminder to employees whose timesheets their manager has not approved two days after the pay period ends."),
        ("context_swap", None, swap(RB, existing_stack=["postgresql", "resque"])),
    ]),
    ("hr-payroll", PY, "Encrypt employees' social security numbers at rest and show only the last four digits in the admin UI.", [
        ("paraphrase", "Store SSNs encrypted in the database, and in the admin screens mask everything except the final 4 digits."),
        ("cosmetic_context", "Encrypt employees' social security numbers at rest and show only the last four digits in the admin UI.", PY_C),
        ("trap_number", "Encrypt employees' social security numbers at rest and show only the last two digits in the admin UI."),
        ("trap_negation", "Encrypt employees' social security numbers at rest and never show any digits of them in the admin UI."),
        ("unrelated", "Add a CSV export of the headcount per department for the finance team."),
    ]),
    ("hr-payroll", TS, "Build an onboarding checklist that new hires complete in their first week, with tasks assigned by HR.", [
        ("paraphrase", "Create a first-week onboarding to-do list for new employees, where HR decides which tasks go on it."),
        ("cosmetic_context", "Build an onboarding checklist that new hires complete in their first week, with tasks assigned by HR.", TS_C),
        ("trap_direction", "Build an offboarding checklist that leaving employees complete in their last week, with tasks assigned by HR."),
        ("trap_number", "Build an onboarding checklist that new hires complete in their first month, with tasks assigned by HR."),
        ("context_swap", None, swap(TS, team_size="small")),
    ]),
    ("hr-payroll", JAVA, "Calculate each employee's accrued vacation as 1.25 days per month of service, capped at 30 days.", [
        ("paraphrase", "Employees earn one and a quarter vacation days for every month they work, up to a maximum balance of 30 days; compute their accrual."),
        ("cosmetic_context", "Calculate each employee's accrued vacation as 1.25 days per month of service, capped at 30 days.", JAVA_C),
        ("trap_number", "Calculate each employee's accrued vacation as 1.25 days per month of service, capped at 20 days."),
        ("trap_negation", "Calculate each employee's accrued vacation as 1.25 days per month of service, with no cap."),
        ("trap_number", "Calculate each employee's accrued vacation as 2.5 days per month of service, capped at 30 days."),
    ]),
    # ------------------------------------------------------------------ education-lms
    ("education-lms", RB, "Let teachers create a quiz with multiple-choice questions and a 20-minute time limit.", [
        ("paraphrase", "Teachers should be able to build multiple choice quizzes that students must finish within twenty minutes."),
        ("paraphrase", "Add quiz authoring for instructors: multiple-choice questions, and the whole quiz is timed at 20 min."),
        ("cosmetic_context", "Let teachers create a quiz with multiple-choice questions and a 20-minute time limit.", RB_C),
        ("trap_number", "Let teachers create a quiz with multiple-choice questions and a 2-hour time limit."),
        ("trap_negation", "Let teachers create a quiz with multiple-choice questions and no time limit."),
        ("context_swap", None, swap(RB, language="python", frameworks=["django"])),
    ]),
    ("education-lms", TS, "Grade programming assignments automatically by running the student's code against hidden test cases.", [
        ("paraphrase", "Auto-grade coding homework: execute each submission against a set of test cases the students can't see."),
        ("cosmetic_context", "Grade programming assignments automatically by running the student's code against hidden test cases.", TS_C),
        ("trap_negation", "Grade programming assignments automatically by running the student's code against test cases, without hiding them from students."),
        ("trap_scope", "Grade programming assignments automatically by running the student's code against hidden test cases and flag submissions that look plagiarised."),
        ("context_swap", None, swap(TS, language="javascript")),
    ]),
    ("education-lms", PY, "Import the class roster from a CSV file exported by the school's student information system.", [
        ("paraphrase", "Load the list of students in a class from the CSV that our SIS exports."),
        ("paraphrase", "Read a student information system CSV export and create the course roster from it."),
        ("cosmetic_context", "Import the class roster from a CSV file exported by the school's student information system.", PY_C),
        ("trap_direction", "Export the class roster to a CSV file that the school's student information system can import."),
        ("trap_entity", "Import the class roster from a OneRoster API feed of the school's student information system."),
        ("context_swap", None, swap(PY, existing_stack=["mysql", "docker"])),
    ]),
    ("education-lms", JAVA, "Release the next module of a course only after the student scores at least 80% on the previous module's test.", [
        ("paraphrase", "Unlock each course module once the learner has passed the prior module's test with a score of 80 percent or more."),
        ("cosmetic_context", "Release the next module of a course only after the student scores at least 80% on the previous module's test.", JAVA_C),
        ("trap_number", "Release the next module of a course only after the student scores at least 60% on the previous module's test."),
        ("trap_negation", "Release every module of a course at once, without requiring any score on the previous module's test."),
        ("unrelated", "Show a certificate of completion when a student finishes every module of a course."),
    ]),
    ("education-lms", RB, "Notify students by email 24 hours before an assignment is due if they haven't submitted it yet.", [
        ("paraphrase", "Email any student who still hasn't turned in an assignment a day before its deadline."),
        ("paraphrase", "One day ahead of each due date, remind by email the students with no submission."),
        ("cosmetic_context", "Notify students by email 24 hours before an assignment is due if they haven't submitted it yet.", RB_C),
        ("trap_number", "Notify students by email 2 hours before an assignment is due if they haven't submitted it yet."),
        ("trap_direction", "Notify students by email 24 hours after an assignment was due if they haven't submitted it yet."),
        ("trap_entity", "Notify students by SMS 24 hours before an assignment is due if they haven't submitted it yet."),
    ]),
    ("education-lms", TS, "Add a discussion forum to each course where only enrolled students and the instructor can post.", [
        ("paraphrase", "Every course gets its own forum; posting is limited to the course's instructor and the students enrolled in it."),
        ("cosmetic_context", "Add a discussion forum to each course where only enrolled students and the instructor can post.", TS_C),
        ("trap_scope", "Add a discussion forum to each course where anyone with an account can post."),
        ("trap_direction", "Add a discussion forum to each course where only the instructor can post and enrolled students can only read."),
        ("context_swap", None, swap(TS, team_size="large")),
    ]),
    ("education-lms", PY, "Compute each student's final grade as a weighted average: homework 30%, midterm 30%, final exam 40%.", [
        ("paraphrase", "Work out final course grades by weighting homework and the midterm at thirty percent each and the final exam at forty percent."),
        ("cosmetic_context", "Compute each student's final grade as a weighted average: homework 30%, midterm 30%, final exam 40%.", PY_C),
        ("trap_number", "Compute each student's final grade as a weighted average: homework 20%, midterm 30%, final exam 50%."),
        ("trap_scope", "Compute each student's final grade as the plain average of homework, midterm and final exam."),
        ("context_swap", None, swap(PY, language="r")),
    ]),
    ("education-lms", JAVA, "Detect when two students submit essays that are more than 90% identical and flag both for review.", [
        ("paraphrase", "Flag pairs of essay submissions whose text overlaps by over ninety percent so a teacher can review them."),
        ("cosmetic_context", "Detect when two students submit essays that are more than 90% identical and flag both for review.", JAVA_C),
        ("trap_number", "Detect when two students submit essays that are more than 50% identical and flag both for review."),
        ("trap_negation", "Detect when two students submit essays that are more than 90% identical, but don't flag either for review."),
        ("unrelated", "Let students upload essays as PDF or Word files and convert them to plain text."),
    ]),
    ("education-lms", RB, "Let parents see their child's grades and attendance but not other students' records.", [
        ("paraphrase", "Give parents a view of their own kid's attendance and marks, with no access to anyone else's."),
        ("cosmetic_context", "Let parents see their child's grades and attendance but not other students' records.", RB_C),
        ("trap_scope", "Let parents see their child's grades but not attendance or other students' records."),
        ("trap_direction", "Let students see their parents' contact details and the notes teachers wrote about them."),
        ("context_swap", None, swap(RB, existing_stack=["mysql", "sidekiq"])),
    ]),
    ("education-lms", TS, "Build a flashcard mode that shows cards a student got wrong more often than the ones they got right.", [
        ("paraphrase", "Add flashcards with spaced repetition that favours the cards a learner keeps missing over the ones they already know."),
        ("cosmetic_context", "Build a flashcard mode that shows cards a student got wrong more often than the ones they got right.", TS_C),
        ("trap_direction", "Build a flashcard mode that shows cards a student got right more often than the ones they got wrong."),
        ("trap_negation", "Build a flashcard mode that shows every card equally often, no matter whether the student got it right or wrong."),
    ]),
    # ------------------------------------------------------------------ scientific-computing
    ("scientific-computing", SCI, "Solve the 1D heat equation with an explicit finite difference scheme on a grid of 100 points.", [
        ("paraphrase", "Use forward-time centred-space finite differences to integrate the one-dimensional heat equation, discretised with 100 grid points."),
        ("paraphrase", "Write an explicit FD solver for the heat equation in one dimension on a 100-point mesh."),
        ("cosmetic_context", "Solve the 1D heat equation with an explicit finite difference scheme on a grid of 100 points.", SCI_C),
        ("trap_entity", "Solve the 1D heat equation with an implicit Crank-Nicolson scheme on a grid of 100 points."),
        ("trap_number", "Solve the 2D heat equation with an explicit finite difference scheme on a grid of 100 points."),
        ("context_swap", None, swap(SCI, language="julia", frameworks=[])),
    ]),
    ("scientific-computing", SCI, "Fit a Gaussian to a noisy spectrum peak with scipy.optimize.curve_fit and report the uncertainty of each parameter.", [
        ("paraphrase", "Use curve_fit to fit a normal-distribution shaped peak to the noisy spectrum, and give the standard error of every fitted parameter."),
        ("cosmetic_context", "Fit a Gaussian to a noisy spectrum peak with scipy.optimize.curve_fit and report the uncertainty of each parameter.", SCI_C),
        ("trap_entity", "Fit a Lorentzian to a noisy spectrum peak with scipy.optimize.curve_fit and report the uncertainty of each parameter."),
        ("trap_negation", "Fit a Gaussian to a noisy spectrum peak with scipy.optimize.curve_fit, without computing any parameter uncertainties."),
        ("context_swap", None, swap(SCI, team_size="medium")),
    ]),
    ("scientific-computing", JL, "Run a Monte Carlo simulation of 10 million random walks and plot the distribution of final positions.", [
        ("paraphrase", "Simulate ten million random walkers and make a histogram of where they end up."),
        ("cosmetic_context", "Run a Monte Carlo simulation of 10 million random walks and plot the distribution of final positions.", JL_C),
        ("trap_number", "Run a Monte Carlo simulation of 10 thousand random walks and plot the distribution of final positions."),
        ("trap_scope", "Run a Monte Carlo simulation of 10 million random walks."),
        ("trap_entity", "Run a Monte Carlo simulation of 10 million self-avoiding random walks and plot the distribution of final positions."),
        ("context_swap", None, swap(JL, existing_stack=["pbs"])),
    ]),
    ("scientific-computing", CPP, "Multiply two sparse matrices stored in CSR format without converting them to dense.", [
        ("paraphrase", "Implement sparse-times-sparse matrix multiplication directly on compressed sparse row storage, never materialising a dense matrix."),
        ("cosmetic_context", "Multiply two sparse matrices stored in CSR format without converting them to dense.", CPP_C),
        ("trap_entity", "Multiply two sparse matrices stored in CSC format without converting them to dense."),
        ("trap_negation", "Multiply two sparse matrices stored in CSR format by converting them to dense first."),
        ("unrelated", "Compute the eigenvalues of a symmetric dense matrix with the QR algorithm."),
    ]),
    ("scientific-computing", SCI, "Resample an irregularly sampled time series onto a uniform 1-second grid using linear interpolation.", [
        ("paraphrase", "Interpolate linearly so that an unevenly spaced time series gets a value every second."),
        ("paraphrase", "Put our irregular sensor time series on a regular one second spacing with linear interpolation."),
        ("cosmetic_context", "Resample an irregularly sampled time series onto a uniform 1-second grid using linear interpolation.", SCI_C),
        ("trap_number", "Resample an irregularly sampled time series onto a uniform 1-minute grid using linear interpolation."),
        ("trap_entity", "Resample an irregularly sampled time series onto a uniform 1-second grid using cubic spline interpolation."),
        ("context_swap", None, swap(SCI, frameworks=["pandas"])),
    ]),
    ("scientific-computing", CPP, "Parallelise the N-body force calculation with OpenMP over the outer loop.", [
        ("paraphrase", "Use OpenMP to split the outer loop of the n-body gravitational force computation across threads."),
        ("cosmetic_context", "Parallelise the N-body force calculation with OpenMP over the outer loop.", CPP_C),
        ("trap_entity", "Parallelise the N-body force calculation with MPI over the outer loop."),
        ("trap_direction", "Parallelise the N-body force calculation with OpenMP over the inner loop."),
        ("context_swap", None, swap(CPP, language="fortran", frameworks=[])),
    ]),
    ("scientific-computing", JL, "Integrate the Lorenz system with a fourth-order Runge-Kutta method and a fixed step of 0.01.", [
        ("paraphrase", "Solve the Lorenz equations using classic RK4 with a constant time step of 0.01."),
        ("cosmetic_context", "Integrate the Lorenz system with a fourth-order Runge-Kutta method and a fixed step of 0.01.", JL_C),
        ("trap_number", "Integrate the Lorenz system with a second-order Runge-Kutta method and a fixed step of 0.01."),
        ("trap_negation", "Integrate the Lorenz system with a fourth-order Runge-Kutta method and an adaptive step, not a fixed one."),
        ("trap_number", "Integrate the Lorenz system with a fourth-order Runge-Kutta method and a fixed step of 0.001."),
    ]),
    ("scientific-computing", SCI, "Compute the power spectral density of an accelerometer signal with Welch's method and 50% overlapping segments.", [
        ("paraphrase", "Estimate the PSD of the accelerometer data using Welch, with segments overlapping by half."),
        ("cosmetic_context", "Compute the power spectral density of an accelerometer signal with Welch's method and 50% overlapping segments.", SCI_C),
        ("trap_number", "Compute the power spectral density of an accelerometer signal with Welch's method and 75% overlapping segments."),
        ("trap_entity", "Compute the power spectral density of an accelerometer signal with a plain periodogram."),
        ("context_swap", None, swap(SCI, language="matlab", frameworks=[])),
    ]),
    ("scientific-computing", CPP, "Write the simulation state to an HDF5 file every 100 time steps so a crashed run can restart from the last checkpoint.", [
        ("paraphrase", "Checkpoint the simulation to HDF5 each hundred steps, and allow resuming from the most recent checkpoint after a crash."),
        ("cosmetic_context", "Write the simulation state to an HDF5 file every 100 time steps so a crashed run can restart from the last checkpoint.", CPP_C),
        ("trap_number", "Write the simulation state to an HDF5 file every 1000 time steps so a crashed run can restart from the last checkpoint."),
        ("trap_direction", "Read the simulation state from an HDF5 file every 100 time steps so a crashed run can restart from the last checkpoint."),
        ("trap_entity", "Write the simulation state to a NetCDF file every 100 time steps so a crashed run can restart from the last checkpoint."),
    ]),
    ("scientific-computing", JL, "Find all roots of a polynomial of degree up to 20 by computing the eigenvalues of its companion matrix.", [
        ("paraphrase", "Get every root of a polynomial with degree at most twenty from the eigenvalues of the companion matrix."),
        ("cosmetic_context", "Find all roots of a polynomial of degree up to 20 by computing the eigenvalues of its companion matrix.", JL_C),
        ("trap_scope", "Find the largest real root of a polynomial of degree up to 20 by computing the eigenvalues of its companion matrix."),
        ("trap_entity", "Find all roots of a polynomial of degree up to 20 with the Durand-Kerner iteration."),
        ("context_swap", None, swap(JL, language="python")),
    ]),
]  # fmt: skip
